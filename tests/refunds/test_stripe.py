"""Refunds of payments captured via Stripe run through the real Stripe adapter against a
real localstripe server (real HTTP, real SDK)."""

import socket
from io import StringIO

import pytest
import requests
from django.core.management import call_command

from gateways import registry
from gateways.credentials import credentials_reload, gateway_credentials
from gateways.stripe.adapter import StripeGateway
from refunds.models import Refund
from refunds.tasks import REFUND_MAX_RETRIES, refund_execute_task
from tests.support.refunds import run_queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_is_primary(stripe_gateway, settings, monkeypatch):
    settings.FLOWPAY_GATEWAYS = ["stripe"]
    settings.FLOWPAY_BREAKER_FAILURE_THRESHOLD = 10_000  # the failure below is on purpose
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "stripe", StripeGateway)
    registry.gateway_named.cache_clear()
    yield stripe_gateway
    registry.gateway_named.cache_clear()


def stripe_amount_refunded(localstripe_url: str, intent_id: str) -> int:
    key = gateway_credentials("stripe").api_key
    response = requests.get(f"{localstripe_url}/v1/payment_intents/{intent_id}", headers={"Authorization": f"Bearer {key}"},
                            timeout=5)
    response.raise_for_status()
    return response.json()["latest_charge"]["amount_refunded"]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_refund_of_a_transaction_captured_via_stripe_runs_through_localstripe(
    stripe_is_primary, localstripe_url, merchant_a, make_payment, queued_refunds, monkeypatch,
    django_capture_on_commit_callbacks,
):
    # given a 50.00 payment captured at Stripe
    txn = make_payment(merchant_a, amount=5000)
    assert (txn.gateway, txn.status) == ("stripe", "completed") and txn.gateway_reference.startswith("pi_")

    # when the merchant refunds 12.00 and the worker runs it
    with django_capture_on_commit_callbacks(execute=True):
        response = merchant_a.client.post(f"/payment/transactions/{txn.public_id}/refund",
                                          {"amount": 1200, "reason": "Customer service request"}, format="json")
    assert response.status_code == 201, response.json()
    run_queued(queued_refunds)

    # then Stripe (localstripe) refunded it and FlowPay recorded Stripe's refund id
    refund = Refund.objects.get(public_id=response.json()["id"])
    assert (refund.status, refund.gateway) == ("succeeded", "stripe") and refund.gateway_reference.startswith("re_")
    assert stripe_amount_refunded(localstripe_url, txn.gateway_reference) == 1200
    txn.refresh_from_db()
    assert (txn.status, txn.amount_refunded) == ("partially_refunded", 1200)

    # given Stripe is unreachable when the next refund runs
    with django_capture_on_commit_callbacks(execute=True):
        second = merchant_a.client.post(f"/payment/transactions/{txn.public_id}/refund",
                                        {"amount": 800, "reason": "Second item returned"}, format="json").json()
    second_refund = Refund.objects.get(public_id=second["id"])
    monkeypatch.setenv("STRIPE_API_BASE", closed_port_url())
    credentials_reload()
    refund_execute_task.apply(args=[second_refund.pk], retries=REFUND_MAX_RETRIES)
    queued_refunds.clear()

    # then the refund is failed and listed by list_failed_refunds
    second_refund.refresh_from_db()
    assert (second_refund.status, second_refund.failure_code) == ("failed", "gateway_unavailable")
    with pytest.raises(SystemExit) as exited:
        call_command("list_failed_refunds", "--last-24h", stdout=StringIO())
    assert exited.value.code == 1

    # when Stripe is back and the failed refunds are retried
    monkeypatch.setenv("STRIPE_API_BASE", localstripe_url)
    credentials_reload()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("retry_failed_refunds", "--last-24h", stdout=StringIO())
    run_queued(queued_refunds)
    refund_execute_task.apply(args=[second_refund.pk])  # and a duplicate delivery of the task

    # then it succeeded and Stripe refunded each refund exactly once
    second_refund.refresh_from_db()
    assert second_refund.status == "succeeded" and second_refund.gateway_reference.startswith("re_")
    assert stripe_amount_refunded(localstripe_url, txn.gateway_reference) == 2000
    txn.refresh_from_db()
    assert (txn.amount_refunded, txn.amount_refund_reserved) == (2000, 2000)
