"""In a real browser (Playwright driving Chromium): each role signs in through the second
factor and opens the overview and gateways pages; the figures match numbers computed from
the seeded data; a KPI opens the list it counts; an operator switches the gateway from the
page and the next payment goes there. Screenshots under test-artifacts/."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from backoffice.dashboard.rollup import dashboard_rollup_rebuild
from tests.support.dashboard import SPECS, expected, seed_specs
from tests.support.staff_auth import STAFF_PASSWORD, enrol_device, totp_code

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _unhashed_static_names(settings):
    """The live server serves static files from the finders, by their plain names: the
    pages name them so (not by the hashed names of collectstatic's manifest), styled."""
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def usd(minor: int) -> str:
    return f"{Decimal(minor) / 100:,.2f} USD"


@pytest.fixture
def seeded(merchant_a, two_gateways):
    seed_specs(merchant_a.merchant)
    now = timezone.now()
    dashboard_rollup_rebuild(start=now - dt.timedelta(days=40), end=now + dt.timedelta(hours=1))
    return merchant_a


@pytest.fixture
def open_as(browser, browser_server, staff_user):
    contexts = []

    def sign_in(role: str):
        user = staff_user(f"{role}-browser", role)
        device = enrol_device(user)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{browser_server}/admin/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", STAFF_PASSWORD)
        page.fill("#id_otp_token", totp_code(device))
        page.click("#login-form button[type=submit]")
        page.wait_for_load_state()
        assert page.url.rstrip("/").endswith("/admin"), page.url
        return page

    yield sign_in
    for context in contexts:
        context.close()


def figure(page, key: str) -> str:
    return page.inner_text(f"[data-figure='{key}'] .figure-value").strip()


def sidebar_groups(page) -> list[str]:
    return [text.strip() for text in page.locator("#nav-sidebar-inner h2, nav h2").all_inner_texts() if text.strip()]


def test_finance_sees_the_figures_and_a_kpi_opens_its_list(seeded, open_as, browser_server, screenshot):
    week, before = expected(SPECS, days=7, currency="USD"), expected(SPECS, days=7, currency="USD", offset=1)
    page = open_as("finance")
    page.goto(f"{browser_server}/admin/?period=7d&currency=USD&mode=test")
    assert figure(page, "gross") == usd(week["gross"])
    assert page.inner_text("[data-figure='gross'] .figure-previous").strip() == usd(before["gross"])
    assert figure(page, "refunds") == usd(week["refunds"])
    assert figure(page, "net") == usd(week["net"])
    assert figure(page, "payments") == str(week["payments"])
    assert page.locator("#chart-volume canvas.chart").count() == 1
    content = page.content()
    assert "Webhook deliverys" not in content and "Webhook deliveries" in content
    screenshot(page, "1-finance-overview")

    # the payment count opens the transactions list filtered to the same rows
    page.click("[data-figure='payments'] a")
    page.wait_for_load_state()
    assert "/admin/payments/transaction/" in page.url and "currency__exact=USD" in page.url
    assert page.locator("#result_list tbody tr").count() == week["payments"]
    screenshot(page, "2-payments-list-from-kpi")

    # a custom range in another currency, from the picker
    page.goto(f"{browser_server}/admin/")
    page.select_option("#picker-period", "custom")
    page.fill("#picker-from", (timezone.now() - dt.timedelta(days=2)).date().isoformat())
    page.fill("#picker-to", timezone.now().date().isoformat())
    page.select_option("#picker-currency", "EUR")
    page.select_option("#picker-mode", "test")
    page.click("#overview-picker button[type=submit]")
    page.wait_for_load_state()
    assert figure(page, "gross") == "99.00 EUR"
    screenshot(page, "3-finance-custom-eur")


def test_auditor_support_and_admin_pages(seeded, open_as, browser_server, screenshot):
    week = expected(SPECS, days=30, currency="USD")
    auditor = open_as("auditor")
    auditor.goto(f"{browser_server}/admin/?period=30d&currency=USD&mode=test")
    assert figure(auditor, "gross") == usd(week["gross"])
    assert figure(auditor, "open-disputes") == "1"
    screenshot(auditor, "1-auditor-overview")
    assert auditor.goto(f"{browser_server}/admin/dashboard/gateways/").status == 403

    support = open_as("support")
    support.goto(f"{browser_server}/admin/")
    assert support.locator("#overview").count() == 0
    screenshot(support, "2-support-home")
    assert support.goto(f"{browser_server}/admin/dashboard/overview/").status == 403
    assert support.goto(f"{browser_server}/admin/dashboard/gateways/").status == 403

    # an admin sees both pages; the switches are the operators' (read-only for admins)
    admin = open_as("admin")
    assert admin.goto(f"{browser_server}/admin/dashboard/overview/?period=30d&currency=USD&mode=test").status == 200
    assert figure(admin, "gross") == usd(week["gross"])
    admin.goto(f"{browser_server}/admin/dashboard/gateways/")
    assert admin.locator("#switches-read-only").count() == 1 and admin.locator("#gateway-action-form").count() == 0
    screenshot(admin, "3-admin-gateways-read-only")


def test_operator_switches_the_gateway_from_the_page_and_the_next_payment_goes_there(seeded, open_as, browser_server, screenshot):
    page = open_as("operator")
    page.goto(f"{browser_server}/admin/?period=7d&currency=USD&mode=test")
    assert figure(page, "payments") == str(expected(SPECS, days=7, currency="USD")["payments"])
    page.goto(f"{browser_server}/admin/dashboard/gateways/")
    assert page.inner_text("[data-switch='primary'] .switch-value").strip() == "simulator"
    assert page.locator("tr[data-gateway='backup']").count() == 1
    screenshot(page, "1-gateways")

    # without a reason nothing changes
    page.select_option("#id_primary_gateway", "backup")
    page.click("button[value='switch-gateway']")
    page.wait_for_load_state()
    assert "Give a reason" in page.inner_text("#gateways-errors")
    assert not AuditEntry.objects.filter(action="runtime.primary_gateway").exists()

    page.fill("#id_reason", "simulator degraded, moving to backup")
    page.select_option("#id_primary_gateway", "backup")
    page.click("button[value='switch-gateway']")
    page.wait_for_load_state()
    assert page.inner_text("[data-switch='primary'] .switch-value").strip() == "backup"
    screenshot(page, "2-switched")
    entry = AuditEntry.objects.get(action="runtime.primary_gateway")
    assert (entry.actor_id, entry.details["value"], entry.details["reason"]) == (
        "operator-browser", "backup", "simulator degraded, moving to backup")

    response = seeded.client.post("/payment/transactions", {"amount": 1234, "currency": "usd", "paymentMethod": "pm_card_visa"},
                                  format="json")
    assert response.status_code == 201, response.content
    assert response.json()["gateway"] == "backup"
