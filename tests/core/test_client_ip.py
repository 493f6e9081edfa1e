"""The client IP behind the trusted proxies (core.network.client_ip), and that every place
recording where a request came from uses it: the audit log of API calls, of admin actions
and of card-data refusals, and django-auditlog's model changes."""

import pytest
from auditlog.models import LogEntry
from django.test import RequestFactory
from django.urls import reverse

from audit.models import AuditEntry
from core.network import client_ip

PROXY = "10.0.0.5"
CLIENT = "203.0.113.7"


@pytest.fixture
def behind_proxy(settings):
    settings.FLOWPAY_TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::/8"]


def _ip(remote_addr: str, forwarded: str | None = None) -> str | None:
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=remote_addr, **headers))


@pytest.mark.parametrize(("remote_addr", "forwarded", "expected"), [
    (PROXY, CLIENT, CLIENT),
    (PROXY, f"6.6.6.6, {CLIENT}", CLIENT),  # what the client wrote left of its own address is never read
    (PROXY, f"{CLIENT}, 10.0.0.9", CLIENT),  # two proxies of ours
    (PROXY, f"{CLIENT}:51234", CLIENT),  # with a port
    ("fd00::1", "[2001:db8::7]:443", "2001:db8::7"),
    (PROXY, "10.0.0.8, 10.0.0.9", "10.0.0.8"),  # only proxies: the farthest one
    (PROXY, f"{CLIENT}, not-an-ip", PROXY),  # a malformed hop: nothing left of it is trusted
    (PROXY, None, PROXY),
    ("::ffff:10.0.0.5", CLIENT, CLIENT),  # IPv4-mapped peer
    ("198.51.100.1", CLIENT, "198.51.100.1"),  # an untrusted peer: the header is ignored
])
def test_the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy(behind_proxy, remote_addr, forwarded, expected):
    assert _ip(remote_addr, forwarded) == expected


def test_without_trusted_proxies_the_header_is_ignored(settings):
    settings.FLOWPAY_TRUSTED_PROXIES = []
    assert _ip(PROXY, CLIENT) == PROXY
    assert _ip("", CLIENT) is None


@pytest.mark.django_db
def test_an_api_call_through_the_proxy_is_audited_with_the_clients_address(behind_proxy, merchant_a):
    body = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}
    through_proxy = merchant_a.client.post("/payment/transactions", body, format="json",
                                           REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"6.6.6.6, {CLIENT}")
    direct = merchant_a.client.post("/payment/transactions", body, format="json",
                                    REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="6.6.6.6")

    def origin(response) -> str:
        return AuditEntry.objects.get(action="transaction.create", object_id=response.json()["id"]).origin_ip

    assert (origin(through_proxy), origin(direct)) == (CLIENT, "198.51.100.1")


@pytest.mark.django_db
def test_admin_actions_and_model_changes_are_recorded_with_the_clients_address(behind_proxy, mfa_admin_client, merchant_a,
                                                                             make_payment):
    txn = make_payment(merchant_a, capture_method="manual")
    changelist = reverse("admin:payments_transaction_changelist")
    mfa_admin_client.post(changelist, {"action": "capture_selected", "_selected_action": [txn.pk]},
                      REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=CLIENT)
    assert AuditEntry.objects.get(action="transaction.capture", object_id=txn.public_id).origin_ip == CLIENT

    merchant = merchant_a.merchant
    form = {"name": "Renamed", "is_active": "on", "api_keys-TOTAL_FORMS": 0, "api_keys-INITIAL_FORMS": 0,
            "api_keys-MIN_NUM_FORMS": 0, "api_keys-MAX_NUM_FORMS": 1000}
    keys = list(merchant.api_keys.all())
    form.update({"api_keys-TOTAL_FORMS": len(keys), "api_keys-INITIAL_FORMS": len(keys)})
    for index, key in enumerate(keys):
        form.update({f"api_keys-{index}-id": key.pk, f"api_keys-{index}-merchant": merchant.pk})
    response = mfa_admin_client.post(reverse("admin:accounts_merchant_change", args=[merchant.pk]), form,
                                 REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"6.6.6.6, {CLIENT}")
    assert response.status_code == 302
    assert LogEntry.objects.filter(object_pk=str(merchant.pk)).latest("timestamp").remote_addr == CLIENT


@pytest.mark.django_db
def test_a_card_data_refusal_is_audited_with_the_clients_address(behind_proxy, merchant_a):
    response = merchant_a.client.post("/payment/transactions", {"amount": 100, "currency": "usd", "paymentMethod": "4242424242424242"},
                                      format="json", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=CLIENT)
    assert response.status_code == 400
    assert AuditEntry.objects.get(action="security.card_data_rejected").origin_ip == CLIENT
