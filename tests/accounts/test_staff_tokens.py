"""Staff API tokens: issued from the Staff tokens page after a fresh second factor (or by the
bootstrap command), with an expiry; expired or revoked ones answer 401 with their own code;
use records the time and address; merchant keys are unaffected."""

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import StaffToken
from accounts.services import staff_token_create
from audit.models import AuditEntry
from core.actors import Actor
from tests.support.staff_auth import totp_code

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
PAGE = "/admin/staff/tokens/"
URL = "/payment/transactions"


def api(secret: str, ip: str = "203.0.113.5") -> APIClient:
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def signed_in_support(client, staff_user, staff_sign_in, time_machine):
    time_machine.move_to(START, tick=True)
    user = staff_user("sam", "support")
    device = staff_sign_in(client, user)
    return client, user, device


def issue(client, **form):
    response = client.post(PAGE, {"label": "laptop", "expires_in_hours": 12, **form})
    assert response.status_code == 200
    return response


def test_a_token_issued_from_the_page_is_shown_once_and_works(signed_in_support):
    client, user, _ = signed_in_support
    response = issue(client, expires_in_hours=2)
    secret = response.context["issued"].secret
    assert secret.startswith("fp_staff_") and secret in response.content.decode()
    token = StaffToken.objects.get(user=user)
    assert token.expires_at - token.created_at == pytest.approx(dt.timedelta(hours=2), abs=dt.timedelta(seconds=5))
    # the list shows it without the secret
    assert secret not in client.get(PAGE).content.decode()

    assert api(secret).get(URL).status_code == 200
    token.refresh_from_db()
    assert token.last_used_ip == "203.0.113.5" and token.last_used_at is not None
    entry = AuditEntry.objects.get(action="staff_token.create")
    assert entry.actor_id == "sam" and entry.details["issued_by"] == "staff_page" and secret not in json.dumps(entry.details)


def test_use_from_another_address_is_recorded_at_once(signed_in_support):
    client, user, _ = signed_in_support
    secret = issue(client).context["issued"].secret
    api(secret, "203.0.113.5").get(URL)
    api(secret, "198.51.100.20").get(URL)
    assert StaffToken.objects.get(user=user).last_used_ip == "198.51.100.20"


def test_issuing_needs_a_fresh_second_factor(signed_in_support, time_machine):
    client, user, device = signed_in_support
    time_machine.shift(dt.timedelta(minutes=6))  # the sign-in's code is no longer fresh
    page = client.get(PAGE)
    assert page.context["needs_code"]
    refused = issue(client)
    assert refused.context["issued"] is None and "Enter the current code" in refused.content.decode()
    wrong = issue(client, code="000000")
    assert wrong.context["issued"] is None
    time_machine.shift(dt.timedelta(seconds=5))  # past django-otp's pause after a wrong code
    done = issue(client, code=totp_code(device))
    assert done.context["issued"] is not None
    assert StaffToken.objects.filter(user=user).count() == 1


def test_a_lifetime_beyond_the_maximum_is_refused(signed_in_support, settings):
    client, user, _ = signed_in_support
    assert issue(client, expires_in_hours=30 * 24 + 1).context["issued"] is None
    settings.FLOWPAY_STAFF_TOKEN_MAX_DAYS = 7
    assert "at most 7 days" in issue(client, expires_in_hours=8 * 24).content.decode()
    assert not StaffToken.objects.filter(user=user).exists()


def test_an_expired_token_answers_401_with_its_code(signed_in_support, time_machine, merchant_a):
    client, user, _ = signed_in_support
    secret = issue(client, expires_in_hours=1).context["issued"].secret
    assert api(secret).get(URL).status_code == 200
    time_machine.shift(dt.timedelta(hours=1, seconds=1))
    response = api(secret).get(URL)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error" and error["code"] == "staff_token_expired" and "expired" in error["message"]
    refused = AuditEntry.objects.get(action="staff_token.refused")
    assert refused.result == "denied" and refused.details["reason"] == "expired" and refused.origin_ip == "203.0.113.5"
    # a merchant API key is unaffected
    assert merchant_a.client.get(URL).status_code == 200


def test_a_revoked_token_answers_401_with_its_code(signed_in_support, merchant_a):
    client, user, _ = signed_in_support
    secret = issue(client).context["issued"].secret
    token = StaffToken.objects.get(user=user)
    assert client.post(PAGE, {"revoke": token.pk}).status_code == 302
    response = api(secret).get(URL)
    assert response.status_code == 401 and response.json()["error"]["code"] == "staff_token_revoked"
    assert AuditEntry.objects.filter(action="staff_token.revoke", actor_id="sam").count() == 1
    assert merchant_a.client.get(URL).status_code == 200


def test_nobody_revokes_someone_else_s_token_from_the_page(signed_in_support):
    client, _, _ = signed_in_support
    other = staff_token_create(username="olga", role="operator", actor=Actor.system("test"))
    client.post(PAGE, {"revoke": other.record.pk})
    other.record.refresh_from_db()
    assert other.record.revoked_at is None


def test_the_page_needs_a_verified_session(client, staff_user):
    client.force_login(staff_user("eve", "support"))
    assert client.get(PAGE).status_code == 302


def test_the_command_issues_expiring_tokens_and_is_audited(time_machine):
    time_machine.move_to(START, tick=True)
    out = StringIO()
    call_command("create_staff_token", "bot", "--role", "operator", "--expires-in", "2h", "--json", stdout=out)
    data = json.loads(out.getvalue())
    token = StaffToken.objects.get(user__username="bot")
    assert dt.datetime.fromisoformat(data["expiresAt"]) == token.expires_at
    assert token.expires_at - token.created_at == pytest.approx(dt.timedelta(hours=2), abs=dt.timedelta(seconds=5))
    entry = AuditEntry.objects.get(action="staff_token.create")
    assert entry.actor_id == "manage.py create_staff_token" and entry.details["issued_by"] == "command"
    default = staff_token_create(username="bot2", role="support", actor=Actor.system("test")).record
    assert default.expires_at - default.created_at == pytest.approx(dt.timedelta(hours=12), abs=dt.timedelta(seconds=5))
    with pytest.raises(CommandError, match="at most 30 days"):
        call_command("create_staff_token", "bot", "--role", "operator", "--expires-in", "31d")


def test_the_database_refuses_a_token_living_more_than_30_days(staff_user):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    user = staff_user("dba", "support")
    with pytest.raises(IntegrityError), transaction.atomic():
        StaffToken.objects.create(user=user, prefix="fp_staff_x", key_hash="0" * 64, expires_at=timezone.now() + dt.timedelta(days=31))
