"""The overview and gateways pages: who may open them and press their buttons (exactly as
core.permissions says), the figures on known data, bad input, and the buttons' audit entries
(the same as the runbook's internal endpoints write)."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from backoffice.dashboard.gateways_views import ACTIONS
from backoffice.dashboard.rollup import dashboard_rollup_rebuild
from core.models import RuntimeSetting
from core.permissions import STAFF_ROLES, Capability, roles_can
from core.runtime import runtime_invalidate_local_cache
from tests.support.dashboard import SPECS, expected, seed_specs

pytestmark = pytest.mark.django_db

OVERVIEW = "/admin/dashboard/overview/"
GATEWAYS = "/admin/dashboard/gateways/"
# The internal endpoint of each button, with its body.
ENDPOINTS = {
    "switch-gateway": ("/internal/api/payment/switch-gateway", {"primaryGateway": "backup", "reason": "Stripe outage"}),
    "enable-fallback": ("/internal/api/system/enable-fallback-gateway", {"reason": "Stripe outage"}),
    "disable-fallback": ("/internal/api/system/disable-fallback-gateway", {"reason": "Stripe outage"}),
    "enable-simplified-flow": ("/internal/api/system/enable-simplified-flow", {"reason": "Stripe outage"}),
    "disable-simplified-flow": ("/internal/api/system/disable-simplified-flow", {"reason": "Stripe outage"}),
    "reload-api-keys": ("/internal/api/system/reload-api-keys", {"reason": "Stripe outage"}),
}


def usd(minor: int) -> str:
    return f"{Decimal(minor) / 100:,.2f} USD"


@pytest.fixture
def signed_in(staff_user, staff_sign_in):
    def make(role: str, username: str | None = None) -> Client:
        client = Client()
        staff_sign_in(client, staff_user(username or f"{role}-dash", role))
        return client

    return make


def action_body(action: str) -> dict:
    return {"action": action, "reason": "Stripe outage", "primary_gateway": "backup"}


def test_every_button_has_an_internal_endpoint():
    assert set(ACTIONS) == set(ENDPOINTS)


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_role_page_matrix(signed_in, two_gateways, role):
    client = signed_in(role)
    may_overview = roles_can({role}, Capability.BACKOFFICE_OVERVIEW)
    may_gateways = roles_can({role}, Capability.BACKOFFICE_GATEWAYS)

    assert client.get(OVERVIEW).status_code == (200 if may_overview else 403)
    assert client.get(GATEWAYS).status_code == (200 if may_gateways else 403)
    home = client.get("/admin/")
    assert home.status_code == 200
    assert ('id="overview"' in home.content.decode()) is may_overview

    for action, (capability, _, _) in ACTIONS.items():
        response = client.post(GATEWAYS, action_body(action))
        allowed = may_gateways and roles_can({role}, capability)
        assert response.status_code == (302 if allowed else 403), (role, action)
    assert AuditEntry.objects.filter(action__startswith="runtime.").exists() is (role == "operator")


def test_a_superuser_sees_the_pages_but_holds_no_switch(mfa_admin_client, two_gateways):
    assert mfa_admin_client.get(OVERVIEW).status_code == 200
    page = mfa_admin_client.get(GATEWAYS)
    assert page.status_code == 200 and 'id="switches-read-only"' in page.content.decode()
    assert mfa_admin_client.post(GATEWAYS, action_body("switch-gateway")).status_code == 403
    assert not AuditEntry.objects.filter(action__startswith="runtime.").exists()


def test_a_merchant_api_key_or_no_session_never_reaches_the_pages(client, merchant_a, staff_client, two_gateways):
    operator_token = staff_client("operator", "token-only")
    for caller in (client, merchant_a.client, operator_token):
        for url in (OVERVIEW, GATEWAYS, "/admin/"):
            response = caller.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"], url
        for action in ACTIONS:
            response = caller.post(GATEWAYS, action_body(action))
            assert response.status_code in (302, 403) and "runtime" not in response.content.decode()
    assert not AuditEntry.objects.filter(action__startswith="runtime.").exists()
    assert RuntimeSetting.objects.filter(key="primary_gateway").first() is None


def _entry(action: str) -> tuple:
    entry = AuditEntry.objects.filter(action__startswith="runtime.").order_by("-id").first()
    assert entry is not None, action
    return entry.action, entry.actor_type, entry.actor_id, entry.result, entry.details


@pytest.mark.parametrize("action", list(ENDPOINTS))
def test_each_button_writes_the_same_audit_entry_as_its_internal_endpoint(staff_client, staff_sign_in, two_gateways, action):
    from django.contrib.auth import get_user_model

    token = staff_client("operator", "olga")  # the user olga, operator, with a staff token
    olga = get_user_model().objects.get(username="olga")
    olga.set_password("correct horse battery staple")
    olga.save()
    page = Client()
    staff_sign_in(page, olga)

    path, body = ENDPOINTS[action]
    assert token.post(path, body, format="json").status_code == 200
    by_endpoint = _entry(action)

    # the same starting state for the page as the endpoint had: no switch set yet
    RuntimeSetting.objects.all().delete()
    runtime_invalidate_local_cache()
    response = page.post(GATEWAYS, action_body(action))
    assert response.status_code == 302, response.content.decode()[:500]
    assert _entry(action) == by_endpoint
    assert AuditEntry.objects.filter(action=by_endpoint[0]).count() == 2


def test_bad_input_is_refused_with_a_message_and_changes_nothing(signed_in, two_gateways):
    client = signed_in("operator")
    cases = [
        ({"action": "enable-fallback", "reason": ""}, "Give a reason"),
        ({"action": "switch-gateway", "reason": "x", "primary_gateway": "nowhere"}, "Unknown gateway"),
        ({"action": "switch-gateway", "reason": "x", "primary_gateway": "stripe"}, "not enabled"),
        ({"action": "switch-gateway", "reason": "x"}, "Choose the gateway"),
        ({"action": "format-disk", "reason": "x"}, "Select a valid choice"),
    ]
    for body, message in cases:
        response = client.post(GATEWAYS, body)
        assert response.status_code == 400 and message in response.content.decode(), body
    assert not AuditEntry.objects.filter(action__startswith="runtime.").exists()
    assert not RuntimeSetting.objects.exists()

    finance = signed_in("finance")
    for query, message in [("period=year", "Unknown period"), ("period=custom&from=2026-02-02&to=2026-01-01", "ends before"),
                           ("period=custom&from=x", "start and an end date"), ("mode=both", "Unknown mode"),
                           ("currency=XYZ", "No test payments in")]:
        response = finance.get(f"{OVERVIEW}?{query}")
        assert response.status_code == 400 and message in response.content.decode(), query


def test_the_overview_figures_on_known_data(signed_in, merchant_a, two_gateways):
    seed_specs(merchant_a.merchant)
    now = timezone.now()
    dashboard_rollup_rebuild(start=now - dt.timedelta(days=40), end=now + dt.timedelta(hours=1))
    client = signed_in("finance")

    response = client.get(f"{OVERVIEW}?period=7d&currency=USD&mode=test")
    assert response.status_code == 200
    cards = {card["key"]: card for card in response.context["overview"]["cards"]}
    week, before = expected(SPECS, days=7, currency="USD"), expected(SPECS, days=7, currency="USD", offset=1)
    assert cards["gross"]["value"] == usd(week["gross"]) == usd(10_000 + 4_999 + 12_345 + 8_800 + 1_500)
    assert cards["gross"]["previous"] == usd(before["gross"]) == usd(50_000 + 6_000)
    assert cards["refunds"]["value"] == usd(week["refunds"])
    assert cards["disputes"]["value"] == usd(week["disputes"])
    assert cards["net"]["value"] == usd(week["net"])
    assert cards["payments"]["value"] == str(week["payments"]) == "7"
    assert cards["success-rate"]["value"] == f"{Decimal(week['successful'] * 100) / week['payments']:.1f} %"
    for gateway, (ok, total) in week["per_gateway"].items():
        assert cards[f"success-rate-{gateway}"]["value"] == f"{Decimal(ok * 100) / total:.1f} %"
    assert cards["open-disputes"]["value"] == "1"
    # a card links to the changelist it counts, and that list counts the same rows
    listed = client.get(cards["payments"]["href"])
    assert listed.status_code == 200 and listed.context["cl"].result_count == week["payments"]
    gross = client.get(cards["gross"]["href"])
    assert gross.context["cl"].result_count == week["successful"]

    today = client.get(f"{OVERVIEW}?period=today&currency=EUR&mode=test")
    assert today.status_code == 200
    assert {c["key"]: c["value"] for c in today.context["overview"]["cards"]}["payments"] == "0"
    euro = client.get(f"{OVERVIEW}?period=custom&from={(now - dt.timedelta(days=2)).date()}&to={now.date()}&currency=EUR&mode=test")
    assert {c["key"]: c["value"] for c in euro.context["overview"]["cards"]}["gross"] == "99.00 EUR"


# --- the sidebar ---------------------------------------------------------------------------
def sidebar_of(client) -> dict[str, list[tuple[str, str]]]:
    """The sidebar as rendered for the client's user: group -> [(title, link)] it may open."""
    response = client.get("/admin/")
    groups = response.context["sidebar_navigation"]
    return {group["title"]: [(item["title"], item["link"]) for item in group["items"] if item["has_permission"]]
            for group in groups}


def test_the_sidebar_groups_every_model_once_without_duplicate_or_misspelt_labels(mfa_admin_client):
    from django.contrib import admin

    sidebar = sidebar_of(mfa_admin_client)
    assert list(sidebar) == ["Money", "Customers", "Subscriptions", "Operations", "Compliance"]
    links = [link for items in sidebar.values() for _, link in items]
    titles = [title for items in sidebar.values() for title, _ in items]
    assert len(links) == len(set(links)) and len(titles) == len(set(titles))
    for model in admin.site._registry:
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert changelist in links, f"{model._meta.label} is not in the sidebar"
    assert "Webhook deliveries" in titles and not any(re.search(r"[^aeiou]ys\b", title) for title in titles)
    page = mfa_admin_client.get("/admin/webhooks/webhookdelivery/").content.decode()
    assert "deliverys" not in page.lower()


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_each_sidebar_link_is_shown_only_to_who_may_open_it(signed_in, role):
    client = signed_in(role)
    for group in client.get("/admin/").context["sidebar_navigation"]:
        for item in group["items"]:
            status = client.get(item["link"]).status_code
            assert status == (200 if item["has_permission"] else 403), (role, group["title"], item["title"], status)
    shown = {title for items in sidebar_of(client).values() for title, _ in items}
    assert ("Overview" in shown) is roles_can({role}, Capability.BACKOFFICE_OVERVIEW)
    assert ("Gateways" in shown) is roles_can({role}, Capability.BACKOFFICE_GATEWAYS)
    assert ("Reconciliation items" in shown) is roles_can({role}, Capability.RECONCILIATION_READ)


@pytest.mark.django_db(transaction=True)
def test_the_buttons_are_followed_by_a_second_process(signed_in, two_gateways, monkeypatch, tmp_path):
    import json

    from tests.backoffice.test_ops_endpoints import Watcher
    from tests.support.processes import sibling_env

    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"stripe": {"api_key": "sk_test_first0001", "created_at": "2026-10-01"}}))
    monkeypatch.setenv("FLOWPAY_SECRETS_FILE", str(secrets))
    client = signed_in("operator")
    watcher = Watcher(sibling_env(FLOWPAY_GATEWAYS="simulator,backup", FLOWPAY_RUNTIME_REFRESH_SECONDS="1"))
    try:
        assert watcher.last["primary"] == "simulator"
        assert client.post(GATEWAYS, action_body("switch-gateway")).status_code == 302
        watcher.wait_for(lambda seen: seen["primary"] == "backup")
        client.post(GATEWAYS, action_body("enable-fallback"))
        client.post(GATEWAYS, action_body("enable-simplified-flow"))
        watcher.wait_for(lambda seen: seen["fallback"] and seen["simplified"])
        secrets.write_text(json.dumps({"stripe": {"api_key": "sk_test_second0002", "created_at": "2026-11-20"}}))
        assert client.post(GATEWAYS, action_body("reload-api-keys")).status_code == 302
        watcher.wait_for(lambda seen: seen["stripe_key_last4"] == "0002")
    finally:
        watcher.stop()


@pytest.mark.parametrize("role", ["finance", "operator", "auditor", "admin"])
def test_a_card_links_only_to_a_list_its_viewer_may_open(signed_in, merchant_a, two_gateways, role):
    seed_specs(merchant_a.merchant, SPECS[:4])
    dashboard_rollup_rebuild(start=timezone.now() - dt.timedelta(days=3), end=timezone.now() + dt.timedelta(hours=1))
    client = signed_in(role)
    cards = client.get(f"{OVERVIEW}?period=7d&currency=USD&mode=test").context["overview"]["cards"]
    # every one of these roles reads payments (transaction.read), so the payment cards link;
    # each link the page shows opens for its viewer
    assert any(card["href"] for card in cards)
    for card in cards:
        if card["href"]:
            assert client.get(card["href"]).status_code == 200, (role, card["key"], card["href"])
