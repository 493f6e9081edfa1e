"""A database fault in the middle of a payment: the request answers 503 with Retry-After,
the Idempotency-Key stays claimed, and a retry with the same key never starts a second
payment or a second gateway charge. The test drops its own PostgreSQL connection (only that
backend) while the gateway call is in flight."""

import datetime as dt

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from core.models import IdempotencyRecord
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorGateway
from payments.models import Transaction

URL = "/payment/transactions"
BODY = {"amount": 4200, "currency": "eur", "paymentMethod": "pm_card_visa"}


def _terminate_own_backend() -> None:
    """What a failover or an operator's pg_terminate_backend does to this request's connection."""
    pid = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(dbname=db["NAME"], host=db["HOST"], port=db["PORT"], user=db["USER"], autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.fixture
def database_dropped_after_the_charge(monkeypatch):
    charge = SimulatorGateway.authorize

    def authorize_then_lose_the_database(self, **kwargs):
        result = charge(self, **kwargs)  # the gateway has taken the money (its record is committed)
        _terminate_own_backend()
        return result

    monkeypatch.setattr(SimulatorGateway, "authorize", authorize_then_lose_the_database)
    return monkeypatch


@pytest.mark.django_db(transaction=True)
def test_a_database_drop_during_the_gateway_call_answers_503_and_the_retry_never_charges_twice(
    merchant_a, database_dropped_after_the_charge,
):
    # when the database connection drops while the gateway call is in flight
    first = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-77")
    database_dropped_after_the_charge.undo()

    # then the answer is a retryable 503 in the one error shape, not a 500
    assert first.status_code == 503, first.content
    assert first.json()["error"]["code"] == "database_unavailable"
    assert first["Retry-After"]
    # and the key stays claimed: an immediate retry waits instead of starting afresh
    retry = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-77")
    assert retry.status_code == 409
    assert IdempotencyRecord.objects.filter(key="order-77", status=IdempotencyRecord.Status.IN_FLIGHT).count() == 1

    # when the retry comes after the lock timeout, it takes the key over
    IdempotencyRecord.objects.filter(key="order-77").update(locked_at=timezone.now() - dt.timedelta(minutes=10))
    taken_over = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-77")

    # then it answers the first payment: one transaction, one charge at the gateway
    assert taken_over.status_code == 201, taken_over.content
    (txn,) = Transaction.objects.filter(merchant=merchant_a.merchant)
    assert taken_over.json()["id"] == txn.public_id
    assert SimulatorCharge.objects.filter(flowpay_reference=txn.public_id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_unexpected_error_keeps_the_key_claimed_so_a_retry_cannot_charge_again(merchant_a, monkeypatch):
    charge = SimulatorGateway.authorize

    def authorize_then_crash(self, **kwargs):
        charge(self, **kwargs)
        raise RuntimeError("worker bug after the charge")

    monkeypatch.setattr(SimulatorGateway, "authorize", authorize_then_crash)
    merchant_a.client.raise_request_exception = False
    first = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-78")
    monkeypatch.undo()

    assert first.status_code == 500
    assert merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-78").status_code == 409
    assert Transaction.objects.filter(merchant=merchant_a.merchant).count() == 1
    (txn,) = Transaction.objects.filter(merchant=merchant_a.merchant)
    assert SimulatorCharge.objects.filter(flowpay_reference=txn.public_id).count() == 1
