"""Staff passwords (12+ characters, letters and digits, not common, not one of the last 4,
Argon2) and sessions (15 idle minutes, secure HttpOnly cookies in production)."""

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.test import Client

from audit.models import AuditEntry
from tests.support.staff_auth import totp_code

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def messages_for(password: str, user=None) -> list[str]:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        return exc.messages
    return []


@pytest.mark.parametrize(("password", "message"), [
    ("Sh0rt", "This password is too short. It must contain at least 12 characters."),
    ("onlyletterslongenough", "This password must contain both letters and digits."),
    ("123456789012345", "This password must contain both letters and digits."),
    ("password1234", "This password is too common."),
])
def test_each_rule_rejects_what_it_should_with_django_s_messages(password, message):
    assert message in messages_for(password)


def test_a_password_like_the_username_is_refused(staff_user):
    user = staff_user("maximilian2026", "support")
    assert "The password is too similar to the username." in messages_for("maximilian2026", user)


def test_a_good_password_passes_every_rule(staff_user):
    assert messages_for("Tangerine-river-42", staff_user("olive", "support")) == []


def test_none_of_the_last_four_passwords_may_come_back(staff_user):
    user = staff_user("hugo", "support")
    used = [f"Harbour-light-{n}4x" for n in range(5)]
    for password in used:
        assert messages_for(password, user) == []
        user.set_password(password)
        user.save()
    recent = "This password was used recently: choose one that is none of your last 4 passwords."
    for password in used[1:]:  # the last four, the current one included
        assert recent in messages_for(password, user)
    assert messages_for(used[0], user) == []  # the fifth-last is allowed again
    # the first password (the fixture's) and the five above
    assert user.password_history.count() == 6 and all(e.password.startswith("argon2") for e in user.password_history.all())
    assert not any(p in e.password for e in user.password_history.all() for p in used)


def test_passwords_are_hashed_with_argon2(staff_user):
    assert settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    assert staff_user("ana", "support").password.startswith("argon2$argon2id$")


def test_the_password_change_page_applies_the_rules_and_is_audited(staff_user, staff_sign_in, time_machine):
    time_machine.move_to(START, tick=True)
    client = Client()
    user = staff_user("pablo", "support")
    staff_sign_in(client, user)
    form = {"old_password": "correct horse battery staple", "new_password1": "allletters-no-digits", "new_password2": "allletters-no-digits"}
    refused = client.post("/admin/password_change/", form)
    assert refused.status_code == 200 and "This password must contain both letters and digits." in refused.content.decode()
    assert not AuditEntry.objects.filter(action="staff_user.password_change").exists()

    form.update(new_password1="Quiet-meadow-2026", new_password2="Quiet-meadow-2026")
    assert client.post("/admin/password_change/", form).status_code == 302
    entry = AuditEntry.objects.get(action="staff_user.password_change")
    assert entry.actor_id == "pablo" and entry.details == {"username": "pablo", "changed_by": "self"}
    assert "Quiet-meadow-2026" not in str(entry.details)


def test_a_session_ends_after_15_idle_minutes(mfa_admin_client, time_machine):
    time_machine.move_to(dt.datetime.now(dt.UTC), tick=True)
    assert settings.SESSION_COOKIE_AGE == 15 * 60 and settings.SESSION_SAVE_EVERY_REQUEST
    assert mfa_admin_client.get("/admin/").status_code == 200
    # activity keeps it alive
    for _ in range(3):
        time_machine.shift(dt.timedelta(minutes=14))
        assert mfa_admin_client.get("/admin/").status_code == 200
    # 15 idle minutes end it
    time_machine.shift(dt.timedelta(minutes=15, seconds=5))
    response = mfa_admin_client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_cookies_are_secure_and_http_only_in_production(client, staff_user, time_machine):
    assert not settings.DEBUG  # the suite runs as production does
    time_machine.move_to(START, tick=True)
    user = staff_user("cora", "support")
    from tests.support.staff_auth import enrol_device

    device = enrol_device(user)
    page = client.get("/admin/login/")
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["secure"] and csrf["httponly"]
    response = client.post("/admin/login/", {"username": "cora", "password": "correct horse battery staple", "otp_token": totp_code(device)})
    session = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
    assert int(session["max-age"]) == 900


def test_forms_refuse_a_post_without_the_csrf_token(staff_user):
    client = Client(enforce_csrf_checks=True)
    staff_user("csrf-user", "support")
    response = client.post("/admin/login/", {"username": "csrf-user", "password": "correct horse battery staple"})
    assert response.status_code == 403


def test_sign_in_settings_outside_the_pci_bounds_stop_start_up(settings):
    from core.checks import check_staff_sign_in

    assert check_staff_sign_in(None) == []
    settings.FLOWPAY_STAFF_LOCKOUT_FAILURES = 11
    settings.FLOWPAY_STAFF_LOCKOUT_MINUTES = 15
    settings.FLOWPAY_STAFF_SESSION_IDLE_SECONDS = 3600
    settings.FLOWPAY_STAFF_TOKEN_MAX_DAYS = 90
    settings.FLOWPAY_STAFF_MFA_PATHS = ["/dashboard/"]
    messages = [error.msg for error in check_staff_sign_in(None) if error.id == "flowpay.E108"]
    assert len(messages) == 5 and any("/admin/" in message for message in messages)
