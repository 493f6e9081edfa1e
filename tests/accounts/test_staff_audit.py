"""Every staff authentication event writes an audit entry with the PCI DSS 10.2.2 fields
(who, when, from where, what, the result, the reason of a failure), and none carries a
password, a code, a secret or a token."""

import datetime as dt
import json

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import StaffLockout
from audit.actions import AuditAction
from audit.models import AuditEntry
from tests.support.staff_auth import SIGN_IN_URL, STAFF_PASSWORD, totp_code

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
IP = "203.0.113.77"
EVENTS = {
    AuditAction.STAFF_USER_SIGN_IN, AuditAction.STAFF_USER_SIGN_OUT, AuditAction.STAFF_USER_LOCKED,
    AuditAction.STAFF_USER_UNLOCKED, AuditAction.STAFF_USER_MFA_ENROL, AuditAction.STAFF_USER_MFA_RESET,
    AuditAction.STAFF_USER_RECOVERY_CODE_USED, AuditAction.STAFF_USER_PASSWORD_CHANGE, AuditAction.STAFF_USER_ROLES_CHANGE,
    AuditAction.STAFF_TOKEN_CREATE, AuditAction.STAFF_TOKEN_REVOKE, AuditAction.STAFF_TOKEN_REFUSED,
}


def test_every_authentication_event_is_audited_with_the_pci_fields_and_no_secret(staff_user, admin_user, time_machine):
    time_machine.move_to(START, tick=True)
    secrets: list[str] = [STAFF_PASSWORD]
    browser = Client(REMOTE_ADDR=IP)
    user = staff_user("ivy", "support")

    # failed sign-in, then enrolment (secret shown once), recovery codes
    browser.post(SIGN_IN_URL, {"username": "ivy", "password": "Wrong-password-1"})
    secrets.append("Wrong-password-1")
    enrol_url = browser.post(SIGN_IN_URL, {"username": "ivy", "password": STAFF_PASSWORD})["Location"]
    page = browser.get(enrol_url)
    secrets += [page.context["enrolment"].secret, page.context["enrolment"].otpauth_uri]
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    code = totp_code(device)
    codes = browser.post(enrol_url, {"code": code}).context["recovery_codes"]
    secrets += [code, *codes]
    # a staff token issued, used after revocation; a password change; a sign-out
    issued = browser.post("/admin/staff/tokens/", {"label": "cli", "expires_in_hours": 1}).context["issued"]
    secrets.append(issued.secret)
    browser.post("/admin/staff/tokens/", {"revoke": issued.record.pk})
    Client(REMOTE_ADDR=IP).get("/payment/transactions", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    new_password = "Orchard-stone-58"
    secrets.append(new_password)
    browser.post("/admin/password_change/", {"old_password": STAFF_PASSWORD, "new_password1": new_password, "new_password2": new_password})
    browser.post("/admin/logout/")
    # a recovery code signs in; ten wrong codes lock; an admin unlocks, changes roles, resets MFA
    time_machine.shift(dt.timedelta(seconds=31))
    Client(REMOTE_ADDR=IP).post(SIGN_IN_URL, {"username": "ivy", "password": new_password, "otp_token": codes[0]})
    attacker = Client(REMOTE_ADDR=IP)
    for n in range(10):
        attacker.post(SIGN_IN_URL, {"username": "ivy", "password": new_password, "otp_token": f"{n:06d}"})
    admin = Client(REMOTE_ADDR=IP)
    admin_device = TOTPDevice.objects.create(user=admin_user, name="authenticator", confirmed=True)
    admin_code = totp_code(admin_device)
    secrets.append(admin_code)
    admin.post(SIGN_IN_URL, {"username": "admin", "password": "password", "otp_token": admin_code})
    lockout = StaffLockout.objects.get(username="ivy")
    admin.post(reverse("admin:accounts_stafflockout_changelist"),
               {"action": "unlock_selected", "_selected_action": [lockout.pk], "confirm": "1", "reason": "called the helpdesk"})
    admin.post(reverse("admin:auth_user_changelist"),
               {"action": "reset_second_factor", "_selected_action": [user.pk], "confirm": "1", "reason": "new phone"})
    form = admin.get(reverse("admin:auth_user_change", args=[user.pk])).context["adminform"].form
    data = {key: value for key, value in form.initial.items() if value is not None and key not in ("password", "groups", "user_permissions")}
    data.update(groups=[g.pk for g in user.groups.all()] + [_group("finance")], last_login_0="", last_login_1="",
                date_joined_0="2026-03-02", date_joined_1="09:00:00", is_active="on", is_staff="on")
    assert admin.post(reverse("admin:auth_user_change", args=[user.pk]), data).status_code == 302

    entries = list(AuditEntry.objects.filter(action__in=EVENTS).order_by("id"))
    assert {entry.action for entry in entries} == {event.value for event in EVENTS}
    for entry in entries:
        # PCI DSS 10.2.2: user identification, type of event, date and time, success or failure, origin, affected component
        assert entry.actor_type == "staff" and entry.actor_id, entry.action
        assert entry.occurred_at is not None and entry.result in ("success", "failure", "denied"), entry.action
        assert entry.origin_ip == IP or (entry.action == "staff_user.unlocked" and entry.actor_id == "lockout expiry"), entry.action
        assert entry.object_type and entry.object_id, entry.action
        if entry.result != "success":
            assert entry.details.get("reason"), entry.action
        text = json.dumps(entry.details) + entry.actor_id
        for secret in secrets:
            assert secret.lower() not in text.lower(), (entry.action, secret)
    roles = AuditEntry.objects.get(action="staff_user.roles_change")
    assert roles.details["roles_added"] == ["finance"] and roles.actor_id == "admin"
    assert AuditEntry.objects.get(action="staff_user.unlocked").details["reason"] == "called the helpdesk"


def _group(name: str) -> int:
    from django.contrib.auth.models import Group

    return Group.objects.get_or_create(name=name)[0].pk
