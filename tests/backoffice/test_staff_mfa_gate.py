"""Every admin and dashboard URL needs a session that passed its second factor: a staff user
without a verified device is sent to enrolment (or signed out) from each one, and gets no data."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.services import merchant_create
from accounts.services.mfa import staff_mfa_reset
from audit.models import AuditEntry
from core.actors import Actor
from core.errors import PermissionDenied
from tests.support.staff_auth import SIGN_IN_URL, STAFF_PASSWORD

pytestmark = pytest.mark.django_db

SECRET_NAME = "Merchant-that-must-not-leak"
OPEN_PAGES = {"/admin/login/", "/admin/logout/", "/admin/staff/enrol/"}


def _concrete(pattern: str) -> str:
    """A URL for a route: each parameter becomes 1, a regex alternative its first choice."""
    pattern = re.sub(r"<(?:\w+:)?\w+>", "1", pattern)
    pattern = re.sub(r"\(\?P<\w+>([^|)]*)[^)]*\)", lambda m: m.group(1).replace(".*", "x") or "x", pattern)
    return pattern.lstrip("^").rstrip("$").replace("\\", "")


def urls_under(prefix: str) -> list[str]:
    found = []

    def walk(patterns, base):
        for entry in patterns:
            here = base + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, here)
            elif isinstance(entry, URLPattern):
                found.append("/" + _concrete(here))

    walk(get_resolver().url_patterns, "")
    return sorted({url for url in found if url.startswith(prefix)})


@pytest.fixture
def password_only(client, staff_user):
    """A staff user without an authenticator, signed in with the password (enrolment pending)."""
    staff_user("penny", "finance", "support", "operator", "auditor")
    response = client.post(SIGN_IN_URL, {"username": "penny", "password": STAFF_PASSWORD, "otp_token": ""})
    assert response["Location"].startswith("/admin/staff/enrol/")
    return client


def test_the_crawl_covers_the_admin(mfa_admin_client):
    urls = urls_under("/admin/")
    assert len(urls) > 100
    assert {"/admin/", "/admin/accounts/merchant/", "/admin/accounts/merchant/1/change/", "/admin/staff/tokens/"} <= set(urls)


@pytest.mark.parametrize("prefix", ["/admin/", "/dashboard/"])
def test_every_page_redirects_a_session_without_second_factor_to_enrolment(password_only, prefix):
    merchant_create(name=SECRET_NAME, actor=Actor.system("test"))
    # every URL the project routes under the prefix, and paths it does not route (yet): the
    # dashboard is built later, and any page it adds is covered already
    urls = [url for url in urls_under(prefix) if url not in OPEN_PAGES] + [prefix, f"{prefix}anything/", f"{prefix}x/1/change/"]
    for url in urls:
        for method in ("get", "post"):
            response = getattr(password_only, method)(url)
            assert response.status_code == 302, (method, url, response.status_code)
            assert response["Location"].startswith("/admin/staff/enrol/?next="), (method, url, response["Location"])
            assert SECRET_NAME not in response.content.decode()


def test_a_session_whose_device_was_reset_is_signed_out(client, staff_user, staff_sign_in, admin_user):
    user = staff_user("rob", "support")
    staff_sign_in(client, user)
    assert client.get("/admin/").status_code == 200

    staff_mfa_reset(user_id=user.pk, reason="phone lost", actor=Actor.staff(user=admin_user, ip="198.51.100.7"))

    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(f"{SIGN_IN_URL}?next=")
    assert "_auth_user_id" not in client.session  # signed out, not merely redirected
    # signing in again asks for a new enrolment
    again = client.post(SIGN_IN_URL, {"username": "rob", "password": STAFF_PASSWORD, "otp_token": ""})
    assert again["Location"].startswith("/admin/staff/enrol/")


def test_a_session_signed_in_without_the_sign_in_page_gets_nothing(client, admin_user):
    client.force_login(admin_user)
    response = client.get("/admin/accounts/merchant/")
    assert response.status_code == 302 and response["Location"].startswith(SIGN_IN_URL)


def test_the_api_is_not_behind_the_staff_gate(merchant_a):
    assert merchant_a.client.get("/payment/transactions").status_code == 200


def test_an_admin_resets_a_second_factor_from_the_user_list_with_a_reason(mfa_admin_client, staff_user, staff_sign_in):
    user = staff_user("ruth", "support")
    staff_sign_in(Client(), user)
    changelist = reverse("admin:auth_user_changelist")
    asked = mfa_admin_client.post(changelist, {"action": "reset_second_factor", "_selected_action": [user.pk]})
    assert asked.status_code == 200 and "reason" in asked.content.decode()
    # no reason: nothing happens
    mfa_admin_client.post(changelist, {"action": "reset_second_factor", "_selected_action": [user.pk], "confirm": "1", "reason": ""})
    assert user.totpdevice_set.exists()
    done = mfa_admin_client.post(changelist, {"action": "reset_second_factor", "_selected_action": [user.pk], "confirm": "1",
                                              "reason": "new phone"})
    assert done.status_code == 302 and not user.totpdevice_set.exists()
    entry = AuditEntry.objects.get(action="staff_user.mfa_reset")
    assert entry.details["reason"] == "new phone" and entry.actor_id == "admin" and entry.object_id == str(user.pk)


def test_only_admins_reset_or_unlock(client, staff_user, staff_sign_in):
    finance = staff_user("fay", "finance")
    finance.is_superuser = False
    finance.save()
    staff_sign_in(client, finance)
    target = staff_user("tom", "support")
    from django.contrib.auth.models import Permission

    finance.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    page = client.get(reverse("admin:auth_user_changelist"))
    assert page.status_code == 200 and "reset_second_factor" not in page.content.decode()
    with pytest.raises(PermissionDenied) as refused:
        staff_mfa_reset(user_id=target.pk, reason="x", actor=Actor.staff(user=finance))
    assert "Only admins" in str(refused.value)
    with pytest.raises(PermissionDenied) as own:
        staff_mfa_reset(user_id=finance.pk, reason="x", actor=Actor(type="staff", id="fay", user_id=finance.pk, roles=frozenset({"admin"})))
    assert "your own" in str(own.value)
