"""Inbound refund events (refund.updated, refund.failed): refunds whose answer was lost are
settled, failed ones release their amount, a succeeded refund is never moved back.

Stripe events are signed with Stripe's scheme and are about real PaymentIntents made at a
real localstripe (tests/support/inbound_webhooks.py: `deliver`, `stripe_webhooks`)."""

import time

import pytest

from gateway_events.models import InboundEvent
from gateways.base import GatewayTimeout
from gateways.stripe.adapter import StripeGateway
from refunds.services.create import refund_create
from refunds.services.execution import refund_execute
from tests.support.inbound_webhooks import SYSTEM, event_id_of, localstripe_get, stripe_event, webhook_audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def lost_refund_answer(monkeypatch):
    """Stripe refunds, but its answer is lost: the refund stays processing (outcome unknown)."""
    made: list = []
    original = StripeGateway.refund

    def refund(self, *, reference, amount, idempotency_key):
        made.append(original(self, reference=reference, amount=amount, idempotency_key=idempotency_key))
        raise GatewayTimeout("Stripe did not answer the refund (outcome unknown): test")

    monkeypatch.setattr(StripeGateway, "refund", refund)
    return made


def processing_refund(account, make_payment, lost_refund_answer, *, amount=600):
    txn = make_payment(account, amount=2000)
    assert txn.status == "completed"
    refund = refund_create(transaction_id=txn.pk, amount=amount, reason="returned", actor=SYSTEM)
    refund = refund_execute(refund_id=refund.pk, actor=SYSTEM, final_attempt=False)
    assert (refund.status, refund.outcome_unknown, refund.gateway_reference) == ("processing", True, "")
    (made,) = lost_refund_answer
    return txn, refund, made


def stripe_refund_object(localstripe_url, made, refund, txn, **overrides) -> dict:
    charge = localstripe_get(localstripe_url, f"/v1/payment_intents/{txn.gateway_reference}")["latest_charge"]
    charge_id = charge["id"] if isinstance(charge, dict) else charge
    return {
        "id": made.reference, "object": "refund", "amount": refund.amount, "currency": "usd", "charge": charge_id,
        "payment_intent": txn.gateway_reference, "status": "succeeded", "reason": "requested_by_customer",
        "metadata": {"flowpay_idempotency_key": refund.idempotency_key}, "created": int(time.time()),
        **overrides,
    }


def test_refund_updated_succeeded_settles_a_refund_whose_answer_was_lost(
    stripe_webhooks, localstripe_url, merchant_a, make_payment, lost_refund_answer, deliver,
):
    txn, refund, made = processing_refund(merchant_a, make_payment, lost_refund_answer)

    payload = stripe_event("refund.updated", stripe_refund_object(localstripe_url, made, refund, txn))
    assert deliver.stripe(payload).status_code == 200

    refund.refresh_from_db()
    assert (refund.status, refund.gateway_reference, refund.outcome_unknown) == ("succeeded", made.reference, False)
    txn.refresh_from_db()
    assert (txn.status, txn.amount_refunded, txn.amount_refund_reserved) == ("partially_refunded", 600, 600)
    row = InboundEvent.objects.get()
    assert (row.status, row.object_reference) == ("processed", made.reference)
    assert f"{refund.public_id}: processing → succeeded" in row.note
    assert set(webhook_audit(row.event_id).values_list("action", flat=True)) == {"refund.succeeded", "transaction.partially_refunded"}


def test_refund_failed_fails_a_processing_refund_and_releases_its_amount(
    stripe_webhooks, localstripe_url, merchant_a, make_payment, lost_refund_answer, deliver,
):
    txn, refund, made = processing_refund(merchant_a, make_payment, lost_refund_answer)

    obj = stripe_refund_object(localstripe_url, made, refund, txn, status="failed", failure_reason="expired_or_canceled_card")
    assert deliver.stripe(stripe_event("refund.failed", obj)).status_code == 200

    refund.refresh_from_db()
    assert (refund.status, refund.failure_code, refund.holds_reservation) == ("failed", "expired_or_canceled_card", False)
    txn.refresh_from_db()
    assert (txn.status, txn.amount_refunded, txn.amount_refund_reserved) == ("completed", 0, 0)
    # an older refund.updated (pending) arriving afterwards changes nothing
    pending = stripe_refund_object(localstripe_url, made, refund, txn, status="pending")
    assert deliver.stripe(stripe_event("refund.updated", pending, created=int(time.time()) - 30)).status_code == 200
    refund.refresh_from_db()
    assert refund.status == "failed"


def test_a_refund_failed_with_an_unknown_outcome_that_the_gateway_made_is_recovered(
    stripe_webhooks, localstripe_url, merchant_a, make_payment, lost_refund_answer, deliver,
):
    # given a refund whose every attempt timed out: failed, outcome unknown, amount still reserved
    txn = make_payment(merchant_a, amount=2000)
    refund = refund_create(transaction_id=txn.pk, amount=500, reason="returned", actor=SYSTEM)
    refund = refund_execute(refund_id=refund.pk, actor=SYSTEM, final_attempt=True)
    assert (refund.status, refund.outcome_unknown, refund.holds_reservation) == ("failed", True, True)
    (made,) = lost_refund_answer

    # when Stripe reports that refund succeeded
    payload = stripe_event("refund.updated", stripe_refund_object(localstripe_url, made, refund, txn))
    assert deliver.stripe(payload).status_code == 200

    # then it is recovered: succeeded, with Stripe's id, and the payment partially refunded
    refund.refresh_from_db()
    assert (refund.status, refund.gateway_reference) == ("succeeded", made.reference)
    txn.refresh_from_db()
    assert (txn.status, txn.amount_refunded, txn.amount_refund_reserved) == ("partially_refunded", 500, 500)
    assert list(webhook_audit(event_id_of(payload)).values_list("action", flat=True).order_by("id")) == [
        "refund.recovered", "refund.succeeded", "transaction.partially_refunded",
    ]


def test_a_succeeded_refund_the_gateway_reports_failed_is_never_moved_back_but_noted(
    stripe_webhooks, localstripe_url, merchant_a, make_payment, deliver,
):
    txn = make_payment(merchant_a, amount=2000)
    refund = refund_create(transaction_id=txn.pk, amount=700, reason="returned", actor=SYSTEM)
    refund = refund_execute(refund_id=refund.pk, actor=SYSTEM)
    assert refund.status == "succeeded" and refund.gateway_reference.startswith("re_")
    obj = {"id": refund.gateway_reference, "object": "refund", "amount": 700, "status": "failed",
           "failure_reason": "expired_or_canceled_card", "payment_intent": txn.gateway_reference, "metadata": {}}

    assert deliver.stripe(stripe_event("refund.failed", obj)).status_code == 200

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    row = InboundEvent.objects.get()
    assert row.status == "processed" and "reconcile manually" in row.note


def test_a_refund_flowpay_does_not_know_is_acknowledged_and_ignored(stripe_webhooks, deliver):
    obj = {"id": "re_1NotOursAtAll", "object": "refund", "amount": 100, "status": "succeeded",
           "payment_intent": "pi_1NotOurs", "metadata": {}}

    response = deliver.stripe(stripe_event("refund.updated", obj))

    assert response.status_code == 200
    row = InboundEvent.objects.get()
    assert (row.status, row.note) == ("ignored", "refund re_1NotOursAtAll: unknown to FlowPay")
    assert row.processed_at is not None
