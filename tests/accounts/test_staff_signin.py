"""Staff sign-in through the admin's sign-in page: the lockout (django-axes, per username,
wrong passwords and wrong codes alike), replayed codes, recovery codes."""

import datetime as dt

import pytest
from django.test import Client

from accounts.models import StaffLockout
from accounts.services.mfa import staff_mfa_enrolment_begin, staff_mfa_enrolment_confirm
from audit.models import AuditEntry
from core.actors import Actor
from tests.support.staff_auth import SIGN_IN_URL, STAFF_PASSWORD, enrol_device, totp_code

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def attempt(client: Client, username: str, password: str, code: str = ""):
    return client.post(SIGN_IN_URL, {"username": username, "password": password, "otp_token": code})


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


@pytest.fixture
def lucy(staff_user):
    user = staff_user("lucy", "support")
    return user, enrol_device(user)


def test_ten_wrong_passwords_lock_the_account_even_for_the_right_password_and_code(client, lucy, time_machine):
    user, device = lucy
    time_machine.move_to(START, tick=True)

    for n in range(1, 11):
        response = attempt(client, "lucy", f"wrong password {n}")
        assert response.status_code == (403 if n == 10 else 200)
    assert "locked" in response.content.decode()

    # the 11th attempt, with the right password and a valid code, is refused
    eleventh = attempt(client, "lucy", STAFF_PASSWORD, totp_code(device))
    assert eleventh.status_code == 403 and "locked" in eleventh.content.decode()
    assert not signed_in(client)
    lockout = StaffLockout.objects.get(username="lucy")
    assert lockout.is_open and lockout.failures == 10
    assert lockout.locked_until - lockout.locked_at == dt.timedelta(minutes=30)

    # 29 minutes later: still locked
    time_machine.shift(dt.timedelta(minutes=29))
    assert attempt(client, "lucy", STAFF_PASSWORD, totp_code(device)).status_code == 403

    # after 30 minutes the right credentials sign in; the release was recorded first
    time_machine.shift(dt.timedelta(minutes=2))
    assert attempt(client, "lucy", STAFF_PASSWORD, totp_code(device)).status_code == 302
    assert signed_in(client)
    lockout.refresh_from_db()
    assert not lockout.is_open and lockout.released_by == "lockout expiry"
    actions = list(AuditEntry.objects.filter(action__startswith="staff_user.").order_by("id").values_list("action", "result"))
    assert actions.count(("staff_user.locked", "denied")) == 1
    assert actions.index(("staff_user.unlocked", "success")) < actions.index(("staff_user.sign_in", "success"))


def test_wrong_codes_count_toward_the_lockout(client, lucy, time_machine):
    user, device = lucy
    time_machine.move_to(START, tick=True)
    for n in range(10):
        # the right password each time, a wrong code (or none)
        response = attempt(client, "lucy", STAFF_PASSWORD, "000000" if n % 2 else "")
        assert "Wrong username, password or code" in response.content.decode() or n == 9
    assert response.status_code == 403
    assert StaffLockout.objects.filter(username="lucy", released_at__isnull=True).exists()
    assert attempt(client, "lucy", STAFF_PASSWORD, totp_code(device)).status_code == 403
    reasons = list(AuditEntry.objects.filter(action="staff_user.sign_in", result="failure").values_list("details__reason", flat=True))
    # django-otp also slows down guessing: a code right after a wrong one is refused as throttled
    assert {"otp_invalid", "otp_missing"} <= set(reasons) <= {"otp_invalid", "otp_missing", "otp_throttled"}


def test_a_success_clears_the_failures_so_only_consecutive_failures_lock(client, lucy, time_machine):
    user, device = lucy
    time_machine.move_to(START, tick=True)
    for n in range(9):
        attempt(client, "lucy", f"wrong {n}")
    assert attempt(client, "lucy", STAFF_PASSWORD, totp_code(device)).status_code == 302
    other = Client()
    for n in range(9):
        assert attempt(other, "lucy", f"wrong again {n}").status_code == 200
    assert not StaffLockout.objects.exists()


def test_the_lockout_is_per_username(client, lucy, staff_user, time_machine):
    time_machine.move_to(START, tick=True)
    for n in range(10):
        attempt(client, "lucy", f"wrong {n}")
    mark = staff_user("mark", "finance")
    device = enrol_device(mark)
    assert attempt(client, "mark", STAFF_PASSWORD, totp_code(device)).status_code == 302


def test_an_unknown_username_is_refused_like_a_wrong_password_and_never_recorded(client):
    response = attempt(client, "my-password-typed-here", "whatever")
    assert response.status_code == 200 and "Wrong username, password or code" in response.content.decode()
    entry = AuditEntry.objects.get(action="staff_user.sign_in")
    assert entry.actor_id == "unknown-user" and entry.details == {"reason": "unknown_user"}
    assert "my-password-typed-here" not in str(entry.details)


def test_a_used_totp_code_is_refused(client, lucy, time_machine):
    user, device = lucy
    time_machine.move_to(START, tick=True)
    code = totp_code(device)
    assert attempt(client, "lucy", STAFF_PASSWORD, code).status_code == 302

    replay = Client()
    response = attempt(replay, "lucy", STAFF_PASSWORD, code)
    assert response.status_code == 200 and not signed_in(replay)
    assert AuditEntry.objects.filter(action="staff_user.sign_in", result="failure", details__reason="otp_replayed").count() == 1

    # the next time step's code works
    time_machine.shift(dt.timedelta(seconds=31))
    assert attempt(replay, "lucy", STAFF_PASSWORD, totp_code(device)).status_code == 302


def test_a_recovery_code_signs_in_once(client, staff_user, time_machine):
    time_machine.move_to(START, tick=True)
    user = staff_user("rita", "finance")
    enrolment = staff_mfa_enrolment_begin(user=user)
    from django_otp.plugins.otp_totp.models import TOTPDevice

    enrolled = staff_mfa_enrolment_confirm(user=user, device_id=enrolment.device_id,
                                           code=totp_code(TOTPDevice.objects.get(pk=enrolment.device_id)), actor=Actor.system("test"))
    codes = enrolled.recovery_codes
    assert len(codes) == len(set(codes)) == 10

    assert attempt(client, "rita", STAFF_PASSWORD, codes[0]).status_code == 302 and signed_in(client)
    used = AuditEntry.objects.get(action="staff_user.recovery_code_used")
    assert used.details == {"recovery_codes_left": 9} and used.actor_id == "rita"

    again = Client()
    assert attempt(again, "rita", STAFF_PASSWORD, codes[0]).status_code == 200
    assert not signed_in(again)
    time_machine.shift(dt.timedelta(seconds=3))  # past django-otp's pause after a wrong code
    assert attempt(again, "rita", STAFF_PASSWORD, codes[1].upper()).status_code == 302


def test_a_user_without_an_authenticator_enrols_at_the_first_sign_in(client, staff_user, time_machine):
    time_machine.move_to(START, tick=True)
    staff_user("nina", "auditor")
    response = attempt(client, "nina", STAFF_PASSWORD)
    assert response.status_code == 302 and response["Location"].startswith("/admin/staff/enrol/")

    page = client.get(response["Location"])
    body = page.content.decode()
    secret = page.context["enrolment"].secret
    assert secret in body and "otpauth://totp/FlowPay%3Anina?secret=" in body and "<svg" in body
    # reloading the page makes a new secret: the first one is never shown again
    again = client.get(response["Location"])
    assert again.context["enrolment"].secret != secret

    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user__username="nina", confirmed=False)
    assert client.post(response["Location"], {"code": "123456" if totp_code(device) != "123456" else "654321"}).status_code == 400
    done = client.post(response["Location"], {"code": totp_code(device)})
    assert done.status_code == 200 and len(done.context["recovery_codes"]) == 10
    assert signed_in(client)
    assert AuditEntry.objects.filter(action="staff_user.mfa_enrol", actor_id="nina").count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_code_sent_by_two_requests_at_once_is_accepted_once(staff_user):
    import threading

    from django.db import connection

    from accounts.services.mfa import staff_second_factor_check

    user = staff_user("twin", "support")
    device = enrol_device(user)
    code = totp_code(device)
    barrier = threading.Barrier(2)
    results = []

    def verify():
        try:
            barrier.wait()
            results.append(staff_second_factor_check(user=user, code=code).ok)
        finally:
            connection.close()

    threads = [threading.Thread(target=verify) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
