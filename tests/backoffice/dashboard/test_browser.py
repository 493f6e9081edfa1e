"""In a real browser (Playwright driving Debian's Chromium): each role signs in with its
second factor and opens the dashboard pages its capabilities give; finance filters the
payments list, exports it and finds the CSV's row count and sums equal to the database's;
an operator replays a dead webhook delivery; an auditor verifies the audit log. Screenshots
of every page go under test-artifacts/."""

import csv

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from core.permissions import STAFF_ROLES, Capability, roles_can
from payments.models import Transaction
from tests.support.staff_auth import STAFF_PASSWORD, enrol_device, totp_code
from webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = {
    "audit-log": (reverse("admin:dashboard_audit_log"), [Capability.AUDIT_READ]),
    "review-queues": (reverse("admin:dashboard_review_queues"), [Capability.FRAUD_READ]),
    "dead-letters": (reverse("admin:dashboard_dead_letters"), [Capability.WEBHOOK_READ]),
    "exports": (reverse("admin:dashboard_exports"), []),
    "payments": (reverse("admin:payments_transaction_changelist"), [Capability.TRANSACTION_READ]),
}


@pytest.fixture
def staff(db):
    users = {}
    for role in STAFF_ROLES:
        user = get_user_model().objects.create_user(f"{role}-browser", password=STAFF_PASSWORD, is_staff=True)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        users[role] = (user, enrol_device(user))
    return users


@pytest.fixture
def seeded(merchant_a, make_payment, monkeypatch):
    for amount, currency, method in [(1999, "USD", "pm_card_visa"), (4500, "USD", "pm_card_visa"),
                                     (120, "USD", "pm_card_chargeDeclined"), (3000, "JPY", "pm_card_visa"),
                                     (75000, "USD", "pm_card_visa")]:
        make_payment(merchant_a, amount=amount, currency=currency, payment_method=method)
    monkeypatch.setattr("webhooks.services.deliveries.webhook_deliveries_queue", lambda ids: None)
    endpoint = WebhookEndpoint.objects.create(merchant=merchant_a.merchant, url="https://merchant.example/hooks",
                                              secret="whsec_browser")
    event = OutboxEvent.objects.create(merchant=merchant_a.merchant, type="transaction.completed", payload={"id": "txn_x"})
    now = timezone.now()
    return WebhookDelivery.objects.create(event=event, endpoint=endpoint, status="dead", attempts=9,
                                          last_status_code=503, last_error="HTTP 503 from the endpoint",
                                          next_attempt_at=now, retry_window_started_at=now)


def sign_in(browser, url: str, user, device):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(f"{url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.fill("#id_otp_token", totp_code(device))
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state()
    assert "/admin/login/" not in page.url, f"{user.username} was not signed in"
    return context, page


@pytest.fixture
def styled(settings):
    """The live server serves static files from the apps (no collectstatic): plain names, so
    the screenshots show the pages as staff see them."""
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def test_each_role_opens_its_pages_finance_exports_operator_replays_auditor_verifies(
    browser, browser_server, staff, seeded, screenshot, tmp_path, styled,
):
    url = browser_server
    for role, (user, device) in staff.items():
        context, page = sign_in(browser, url, user, device)
        for name, (path, capabilities) in PAGES.items():
            response = page.goto(f"{url}{path}")
            allowed = all(roles_can([role], capability) for capability in capabilities)
            assert response.status == (200 if allowed else 403), (role, name, response.status)
            if allowed:
                screenshot(page, f"{role}-{name}")
        context.close()

    # finance filters the payments list, searches it, and exports the filtered set
    context, page = sign_in(browser, url, *staff["finance"])
    page.goto(f"{url}{PAGES['payments'][0]}?status__exact=completed&currency__exact=USD")
    page.fill("#searchbar", "txn_")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    screenshot(page, "finance-payments-filtered")
    with page.expect_download() as download_info:
        page.click("#export-csv")
    path = tmp_path / "payments.csv"
    download_info.value.save_as(path)
    with open(path, encoding="utf-8", newline="") as rows:
        exported = list(csv.DictReader(rows))
    expected = Transaction.objects.filter(status="completed", currency="USD").aggregate(n=Count("id"), total=Sum("amount"))
    assert expected["n"] == 3
    assert (len(exported), sum(int(row["amount_minor"]) for row in exported)) == (expected["n"], expected["total"])
    assert {row["amount_decimal"] for row in exported} == {"19.99", "45.00", "750.00"}
    context.close()

    # an operator replays the dead delivery from the dead letters page
    context, page = sign_in(browser, url, *staff["operator"])
    page.goto(f"{url}{PAGES['dead-letters'][0]}")
    assert "HTTP 503 from the endpoint" in page.content()
    page.check(f"#dead-webhook_deliveries input[name=ids][value='{seeded.pk}']")
    page.click("#dead-webhook_deliveries button.replay")
    page.wait_for_load_state()
    screenshot(page, "operator-dead-letters-replayed")
    assert f"replayed {seeded.public_id}" in page.content()
    seeded.refresh_from_db()
    assert seeded.status == "pending"
    assert AuditEntry.objects.filter(action="webhook_delivery.resend", object_id=seeded.public_id,
                                     actor_id="operator-browser").count() == 1
    context.close()

    # an auditor verifies the audit log now
    context, page = sign_in(browser, url, *staff["auditor"])
    page.goto(f"{url}{PAGES['audit-log'][0]}")
    page.click("#verify-now")
    page.wait_for_load_state()
    screenshot(page, "auditor-audit-log-verified")
    assert "The audit log verifies" in page.content()
    assert page.get_attribute("#chain-last-verification", "data-result") == "success"
    context.close()
