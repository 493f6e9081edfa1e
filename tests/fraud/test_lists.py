"""Allow and block lists, through the API and the admin: values of the list's kind only,
normalised, with a reason and an optional expiry, audited; removal keeps the history."""

import datetime as dt

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from audit.models import AuditEntry
from fraud.models import ListItem
from gateways.simulator.adapter import SimulatorGateway
from tests.support.fraud import pay

LISTS = "/payment/fraud/lists"


def add(account, list_name: str, value: str, **extra):
    return account.client.post(f"{LISTS}/{list_name}", {"value": value, **extra}, format="json")


@pytest.mark.django_db
def test_every_list_is_listed_with_its_kind_and_count(merchant_a):
    add(merchant_a, "blocked_emails", "a@example.com")
    index = merchant_a.client.get(LISTS).json()
    assert index["object"] == "list" and len(index["data"]) == 10
    by_name = {entry["name"]: entry for entry in index["data"]}
    assert by_name["blocked_emails"] == {"name": "blocked_emails", "object": "fraud_list", "kind": "email",
                                         "purpose": "blocked", "itemCount": 1}
    assert by_name["allowed_countries"]["kind"] == "country" and by_name["allowed_countries"]["itemCount"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("list_name", "value", "stored"), [
    ("blocked_emails", "  Fraud@Example.COM ", "fraud@example.com"),
    ("blocked_ip_addresses", "::ffff:203.0.113.9", "203.0.113.9"),
    ("blocked_ip_addresses", "2001:DB8::1", "2001:db8::1"),
    ("allowed_countries", "gb", "GB"),
    ("blocked_customers", "cus_abc123", "cus_abc123"),
    ("blocked_card_fingerprints", "fp_123-abc", "fp_123-abc"),
])
def test_values_are_normalised_for_their_list(merchant_a, list_name, value, stored):
    response = add(merchant_a, list_name, value, reason="chargebacks")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["value"] == stored and body["list"] == list_name and body["reason"] == "chargebacks"
    assert body["id"].startswith("rsli_") and body["expiresAt"] is None and body["removed"] is False
    entry = AuditEntry.objects.get(action="fraud_list_item.add")
    assert entry.object_id == body["id"] and entry.details["reason"] == "chargebacks"


@pytest.mark.django_db
@pytest.mark.parametrize(("list_name", "value"), [
    ("blocked_emails", "not-an-email"), ("blocked_ip_addresses", "300.1.1.1"), ("blocked_countries", "GBR"),
    ("blocked_customers", "customer-9"), ("blocked_card_fingerprints", "fp with spaces"),
])
def test_a_value_not_of_the_lists_kind_is_refused_and_nothing_is_stored(merchant_a, list_name, value):
    response = add(merchant_a, list_name, value)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "list_item_invalid" and response.json()["error"]["param"] == "value"
    assert not ListItem.objects.exists()


@pytest.mark.django_db
def test_unknown_lists_duplicates_and_past_expiry_are_refused(merchant_a):
    assert add(merchant_a, "blocked_colours", "red").status_code == 404
    assert add(merchant_a, "blocked_emails", "a@example.com").status_code == 201
    duplicate = add(merchant_a, "blocked_emails", "A@example.com")
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "list_item_exists"
    past = add(merchant_a, "blocked_emails", "b@example.com", expiresAt=(timezone.now() - dt.timedelta(hours=1)).isoformat())
    assert past.status_code == 400
    assert ListItem.objects.count() == 1


@pytest.mark.django_db
def test_an_expired_item_stops_matching_and_its_value_can_be_added_again(merchant_a):
    expires = timezone.now() + dt.timedelta(hours=1)
    assert add(merchant_a, "blocked_emails", "fraud@example.com", expiresAt=expires.isoformat()).status_code == 201
    assert pay(merchant_a, email="fraud@example.com").status_code == 402
    with time_machine.travel(expires + dt.timedelta(seconds=1), tick=False):
        assert pay(merchant_a, email="fraud@example.com").status_code == 201
        listed = merchant_a.client.get(f"{LISTS}/blocked_emails").json()["data"]
        assert listed[0]["expired"] is True
        assert add(merchant_a, "blocked_emails", "fraud@example.com").status_code == 201
        assert pay(merchant_a, email="fraud@example.com").status_code == 402
    assert ListItem.objects.filter(value="fraud@example.com").count() == 2  # the expired one is kept, removed


@pytest.mark.django_db
def test_removing_an_item_unblocks_and_keeps_the_history(merchant_a, merchant_b):
    fingerprint = SimulatorGateway().describe_payment_method(token="pm_card_visa").fingerprint
    item = add(merchant_a, "blocked_card_fingerprints", fingerprint).json()
    assert pay(merchant_a).status_code == 402
    assert pay(merchant_b).status_code == 201  # another merchant's list
    assert merchant_b.client.delete(f"{LISTS}/blocked_card_fingerprints/{item['id']}").status_code == 404
    removed = merchant_a.client.delete(f"{LISTS}/blocked_card_fingerprints/{item['id']}")
    assert removed.status_code == 200 and removed.json()["removed"] is True
    assert merchant_a.client.delete(f"{LISTS}/blocked_card_fingerprints/{item['id']}").status_code == 404
    assert pay(merchant_a).status_code == 201
    assert merchant_a.client.get(f"{LISTS}/blocked_card_fingerprints").json()["data"] == []
    kept = ListItem.objects.get(public_id=item["id"])
    assert kept.removed_at is not None and kept.removed_by
    assert AuditEntry.objects.filter(action="fraud_list_item.remove", object_id=item["id"]).exists()


@pytest.mark.django_db
def test_an_allow_list_beats_the_block_list_and_the_score(merchant_a):
    add(merchant_a, "blocked_countries", "US")
    assert pay(merchant_a, email="vip@example.com").status_code == 402  # a US card
    add(merchant_a, "allowed_emails", "vip@example.com")
    allowed = pay(merchant_a, email="vip@example.com")
    assert allowed.status_code == 201 and allowed.json()["risk"]["decision"] == "allow"
    assert {r["action"] for r in allowed.json()["risk"]["rules"]} == {"allow", "block"}


@pytest.mark.django_db
def test_lists_are_per_mode(merchant_a):
    from accounts.services import api_key_create
    from core.actors import Actor

    live = api_key_create(merchant=merchant_a.merchant, environment="live", actor=Actor.system("test"))
    live_client = type(merchant_a.client)()
    live_client.credentials(HTTP_AUTHORIZATION=f"Bearer {live.secret}")
    assert live_client.post(f"{LISTS}/blocked_emails", {"value": "x@example.com"}, format="json").status_code == 201
    assert merchant_a.client.get(f"{LISTS}/blocked_emails").json()["data"] == []


@pytest.fixture
def fraud_admin(client, db, staff_sign_in):
    user = get_user_model().objects.create_user(username="lists-admin", password="a-long-enough-password1", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="support")[0])
    staff_sign_in(client, user, password="a-long-enough-password1")  # the admin is behind the second factor
    return client


@pytest.mark.django_db
def test_staff_add_and_remove_list_items_in_the_admin(fraud_admin, merchant_a):
    response = fraud_admin.post("/admin/fraud/listitem/add/", {
        "merchant": merchant_a.merchant.pk, "livemode": "", "list": "blocked_emails", "value": "Bad@Example.com",
        "reason": "reported by the merchant", "expires_at_0": "", "expires_at_1": "",
    })
    assert response.status_code == 302, response.content[:2000]
    item = ListItem.objects.get()
    assert item.value == "bad@example.com" and item.created_by == "lists-admin" and item.merchant_id == merchant_a.merchant.pk
    assert AuditEntry.objects.get(action="fraud_list_item.add").actor_type == "staff"
    assert pay(merchant_a, email="bad@example.com").status_code == 402
    invalid = fraud_admin.post("/admin/fraud/listitem/add/", {
        "merchant": merchant_a.merchant.pk, "list": "blocked_countries", "value": "Atlantis", "reason": "",
        "expires_at_0": "", "expires_at_1": "",
    })
    assert invalid.status_code == 200 and b"two-letter country codes" in invalid.content
    fraud_admin.post("/admin/fraud/listitem/", {"action": "remove_items", "_selected_action": [item.pk]})
    item.refresh_from_db()
    assert item.removed_at is not None and item.removed_by == "lists-admin"
    assert pay(merchant_a, email="bad@example.com").status_code == 201
