"""The gateway idempotency key of a payment made under a merchant's Idempotency-Key is
derived from that key (merchant, key, parameters, attempt number), so the same request can
never make a second charge at the gateway, even through a second FlowPay transaction."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from core.idempotency import idempotency_records_purge
from core.models import IdempotencyRecord
from fraud.models import Decision
from gateways.base import GatewayRequestError
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorGateway
from payments.models import PaymentAttempt, Transaction
from payments.services.gateway_keys import derived_key, gateway_key_base

URL = "/payment/transactions"
BODY = {"amount": 3100, "currency": "eur", "paymentMethod": "pm_card_visa"}


def keys_of(public_id: str) -> list[str]:
    return list(PaymentAttempt.objects.filter(transaction__public_id=public_id).order_by("number").values_list("idempotency_key", flat=True))


@pytest.mark.django_db
def test_the_first_attempt_key_is_derived_from_the_merchants_key_and_stays_per_transaction_without_one(merchant_a, merchant_b):
    keyed = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-9").json()
    record = IdempotencyRecord.objects.get(key="order-9")
    base = gateway_key_base(idempotency_record_id=record.pk)
    assert keys_of(keyed["id"]) == [derived_key(base=base, number=1)]
    assert base.startswith("flowpay:ik_") and "order-9" not in base  # the merchant's key is not sent as is
    assert SimulatorCharge.objects.get(flowpay_reference=keyed["id"]).idempotency_key == derived_key(base=base, number=1)

    # the same key at another merchant, or with other parameters, is another key at the gateway
    other_merchant = merchant_b.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-9").json()
    assert keys_of(other_merchant["id"]) != keys_of(keyed["id"])

    unkeyed = merchant_a.client.post(URL, BODY, format="json").json()
    assert keys_of(unkeyed["id"]) == [f"flowpay:{unkeyed['id']}:authorize:1"]


def _lose_flowpay_rows(public_id: str, key: str) -> None:
    """What a database failover to a replica that missed the last commits does: FlowPay has
    no trace of the payment (transaction, attempts, fraud decision, idempotency record); the
    gateway has its charge."""
    PaymentAttempt.objects.filter(transaction__public_id=public_id).delete()
    Decision.objects.filter(transaction__public_id=public_id).delete()
    Transaction.objects.filter(public_id=public_id).delete()
    IdempotencyRecord.objects.filter(key=key).delete()


@pytest.mark.django_db(transaction=True)
def test_a_second_flowpay_transaction_for_the_same_request_gets_the_first_charge_from_the_gateway(merchant_a):
    # given a payment charged at the gateway, of which FlowPay lost every trace
    first = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-10").json()
    (charge,) = SimulatorCharge.objects.all()
    _lose_flowpay_rows(first["id"], "order-10")

    # when the merchant retries the request with its key
    again = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-10")

    # then the second FlowPay transaction reaches the gateway under the same key: no second charge
    assert again.status_code == 201, again.content
    second = Transaction.objects.get(public_id=again.json()["id"])
    assert (second.status, second.gateway_reference) == ("completed", charge.reference)
    assert SimulatorCharge.objects.count() == 1 and SimulatorCharge.objects.get().call_count == 2


@pytest.mark.django_db(transaction=True)
def test_the_same_key_with_other_parameters_after_a_loss_is_another_charge(merchant_a):
    first = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-11").json()
    _lose_flowpay_rows(first["id"], "order-11")
    other = merchant_a.client.post(URL, {**BODY, "amount": 3200}, format="json", HTTP_IDEMPOTENCY_KEY="order-11")
    assert other.status_code == 201 and other.json()["amountCaptured"] == 3200
    assert SimulatorCharge.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_key_whose_record_was_purged_is_free_again_under_a_fresh_gateway_key(merchant_a):
    first = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-13").json()
    with time_machine.travel(timezone.now() + dt.timedelta(days=2), tick=True):
        assert idempotency_records_purge() == 1
        again = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-13")
    assert again.status_code == 201 and again.json()["id"] != first["id"]
    assert keys_of(again.json()["id"]) == [f"flowpay:{again.json()['id']}:authorize:1"]
    assert SimulatorCharge.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_retry_after_a_request_that_charged_nothing_is_charged_under_a_fresh_key(merchant_a, monkeypatch):
    # given a first request the gateway refused (400: nothing charged, the key is released)
    charge = SimulatorGateway.authorize
    refusals = iter([GatewayRequestError("the gateway refused the request", code="parameter_invalid")])

    def refuse_once(self, **kwargs):
        for refusal in refusals:
            raise refusal
        return charge(self, **kwargs)

    monkeypatch.setattr(SimulatorGateway, "authorize", refuse_once)
    refused = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-12")
    assert refused.status_code == 400 and not IdempotencyRecord.objects.filter(key="order-12").exists()

    # when the merchant retries the same request with the same key
    retried = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-12")

    # then it is charged, once: the derived key is held by the refused attempt, so it gets its own
    assert retried.status_code == 201, retried.content
    assert retried.json()["status"] == "completed"
    assert keys_of(retried.json()["id"]) == [f"flowpay:{retried.json()['id']}:authorize:1"]
    assert SimulatorCharge.objects.count() == 1
