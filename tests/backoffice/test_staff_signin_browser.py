"""In a real browser (Playwright driving Chromium): a new staff user enrols an authenticator,
signs in with a computed TOTP code, is locked out by ten wrong passwords, and is unlocked by
an admin (with a reason) from the lockouts page."""

import base64
import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_otp.oath import totp

from accounts.models import StaffLockout
from audit.models import AuditEntry
from tests.support.staff_auth import enrol_device, totp_code

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Lantern-harbour-93"
ADMIN_PASSWORD = "Granite-window-71"


def code_for(secret: str) -> str:
    """What an authenticator app shows now for this base32 secret."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key, step=30, t0=0, digits=6):06d}"


def sign_in(page, url: str, username: str, password: str, code: str = ""):
    page.goto(f"{url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.fill("#id_otp_token", code)
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state()


@pytest.fixture
def users():
    User = get_user_model()
    bella = User.objects.create_user("bella", password=PASSWORD, is_staff=True)
    bella.groups.add(Group.objects.get_or_create(name="support")[0])
    alex = User.objects.create_superuser("alex", password=ADMIN_PASSWORD)
    return bella, enrol_device(alex)


def test_enrol_sign_in_get_locked_out_and_unlocked(browser, browser_server, users, screenshot, time_machine):
    bella, admin_device = users
    time_machine.move_to(dt.datetime.now(dt.UTC), tick=True)
    url = browser_server

    # 1. First sign-in: password only, then enrolment (QR code and secret shown once)
    first = browser.new_context()
    page = first.new_page()
    page.goto(f"{url}/admin/")
    assert "/admin/login/" in page.url
    sign_in(page, url, "bella", PASSWORD)
    assert "/admin/staff/enrol/" in page.url
    assert page.locator("#enrol-qr svg").count() == 1
    secret = page.inner_text("#enrol-secret").strip()
    screenshot(page, "1-enrol")
    page.fill("#id_code", code_for(secret))
    page.click("#enrol-form button[type=submit]")
    page.wait_for_load_state()
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    screenshot(page, "2-recovery-codes")
    page.get_by_text("Continue").click()
    page.wait_for_load_state()
    assert page.url.rstrip("/").endswith("/admin") and "FlowPay back-office" in page.content()
    first.close()

    # 2. Sign in again with the authenticator's next code
    time_machine.shift(dt.timedelta(seconds=31))
    second = browser.new_context()
    page = second.new_page()
    sign_in(page, url, "bella", PASSWORD, code_for(secret))
    assert page.url.rstrip("/").endswith("/admin"), page.url
    screenshot(page, "3-signed-in")
    second.close()

    # 3. Ten wrong passwords lock the account; the right password and code are refused then
    attacker = browser.new_context()
    page = attacker.new_page()
    for n in range(10):
        sign_in(page, url, "bella", f"guess-{n}-password")
    assert "locked" in page.inner_text("#signin-errors")
    time_machine.shift(dt.timedelta(seconds=31))
    sign_in(page, url, "bella", PASSWORD, code_for(secret))
    assert "/admin/login/" in page.url and "locked" in page.inner_text("#signin-errors")
    screenshot(page, "4-locked")
    attacker.close()

    # 4. An admin unlocks bella from the lockouts page, with a reason
    admin = browser.new_context()
    page = admin.new_page()
    sign_in(page, url, "alex", ADMIN_PASSWORD, totp_code(admin_device))
    assert page.url.rstrip("/").endswith("/admin"), page.url
    lockout = StaffLockout.objects.get(username="bella", released_at__isnull=True)
    page.goto(f"{url}/admin/accounts/stafflockout/")
    page.check(f"input.action-select[value='{lockout.pk}']")
    page.select_option("select[name=action]", "unlock_selected")
    page.locator("button[name=index], button[type=submit][title], #changelist-actions button[type=submit]").first.click()
    page.wait_for_load_state()
    page.fill("#id_reason", "identity confirmed by phone")
    screenshot(page, "5-unlock-reason")
    page.click("#reason-form button[type=submit]")
    page.wait_for_load_state()
    screenshot(page, "6-unlocked")
    lockout.refresh_from_db()
    assert not lockout.is_open and lockout.released_by == "alex"
    admin.close()

    # 5. bella signs in again
    time_machine.shift(dt.timedelta(seconds=31))
    again = browser.new_context()
    page = again.new_page()
    sign_in(page, url, "bella", PASSWORD, code_for(secret))
    assert page.url.rstrip("/").endswith("/admin"), page.url
    again.close()
    assert AuditEntry.objects.get(action="staff_user.unlocked").details["reason"] == "identity confirmed by phone"
