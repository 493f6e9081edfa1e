"""Inbound payment events (POST /webhooks/stripe): payment_intent.* settle payments left
processing, fail declined ones, complete 3-D Secure ones, and never move a payment back;
and localstripe itself delivering its signed event to a live FlowPay server.

Stripe events are signed with Stripe's scheme and are about real PaymentIntents made at a
real localstripe (tests/support/inbound_webhooks.py: `deliver`, `stripe_webhooks`)."""

import time
import uuid

import pytest
import requests

from gateway_events.models import InboundEvent
from payments.models import PaymentAttempt
from tests.support.inbound_webhooks import (
    SECRET,
    event_id_of,
    intent_object,
    stripe_event,
    stuck_stripe_payment,
    threeds_payment_method,
    webhook_audit,
)

pytestmark = pytest.mark.django_db


def test_payment_intent_succeeded_settles_a_payment_left_processing_by_a_lost_response(
    stripe_webhooks, localstripe_url, lost_stripe_answers, merchant_a, deliver,
):
    # given a payment whose answer from Stripe was lost: processing, no reference
    txn = stuck_stripe_payment(merchant_a, amount=2500)
    (charged,) = lost_stripe_answers.made
    attempt = txn.attempts.get()
    assert attempt.outcome == PaymentAttempt.Outcome.UNKNOWN

    # when Stripe sends payment_intent.succeeded for that PaymentIntent (as localstripe has it)
    payload = stripe_event("payment_intent.succeeded", intent_object(localstripe_url, charged.reference))
    response = deliver.stripe(payload)

    # then it is acknowledged, stored and applied: the payment is completed with Stripe's id
    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "duplicate": False}
    txn.refresh_from_db()
    assert (txn.status, txn.gateway_reference, txn.amount_captured) == ("completed", charged.reference, 2500)
    attempt.refresh_from_db()
    assert (attempt.outcome, attempt.gateway_reference) == ("succeeded", charged.reference)
    row = InboundEvent.objects.get()
    assert (row.gateway, row.event_id, row.type, row.status) == ("stripe", event_id_of(payload), "payment_intent.succeeded", "processed")
    assert (row.object_type, row.object_reference, row.flowpay_reference) == ("payment_intent", charged.reference, txn.public_id)
    assert row.processed_at is not None and row.attempts == 1 and row.error == ""
    assert f"{txn.public_id}: processing → completed" in row.note
    # and the change is audited as the webhook
    (entry,) = webhook_audit(row.event_id)
    assert (entry.action, entry.object_id, entry.merchant_id) == ("transaction.resolved", txn.public_id, merchant_a.merchant.pk)
    assert entry.details["from_status"] == "processing" and entry.details["event_type"] == "payment_intent.succeeded"


def test_payment_failed_fails_a_processing_payment_with_the_decline_code(
    stripe_webhooks, localstripe_url, lost_stripe_answers, merchant_a, deliver,
):
    txn = stuck_stripe_payment(merchant_a)
    (charged,) = lost_stripe_answers.made
    intent = intent_object(localstripe_url, charged.reference, status="requires_payment_method", last_payment_error={
        "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
    })

    response = deliver.stripe(stripe_event("payment_intent.payment_failed", intent))

    assert response.status_code == 200
    txn.refresh_from_db()
    assert (txn.status, txn.failure_code, txn.failure_message) == ("failed", "insufficient_funds", "Your card has insufficient funds.")
    assert txn.attempts.get().outcome == PaymentAttempt.Outcome.DECLINED


def test_requires_action_then_succeeded_after_3ds_and_an_older_event_never_moves_it_back(
    stripe_webhooks, localstripe_url, merchant_a, make_payment, deliver,
):
    # given a payment waiting for the customer's 3-D Secure authentication
    txn = make_payment(merchant_a, payment_method=threeds_payment_method(localstripe_url))
    assert txn.status == "requires_action" and txn.gateway_reference.startswith("pi_")
    intent = intent_object(localstripe_url, txn.gateway_reference)
    older = stripe_event("payment_intent.requires_action", {**intent, "status": "requires_action"},
                         created=int(time.time()) - 60)

    # when the customer finishes it and Stripe reports the PaymentIntent succeeded
    succeeded = stripe_event("payment_intent.succeeded", {**intent, "status": "succeeded", "amount_received": txn.amount})
    assert deliver.stripe(succeeded).status_code == 200

    # then the payment is completed (requires_action → processing → completed)
    txn.refresh_from_db()
    assert (txn.status, txn.amount_captured, txn.next_action) == ("completed", txn.amount, None)
    (entry,) = webhook_audit(event_id_of(succeeded))
    assert (entry.details["from_status"], entry.details["status"]) == ("requires_action", "completed")

    # when the older requires_action event arrives late, then nothing moves back
    assert deliver.stripe(older).status_code == 200
    txn.refresh_from_db()
    assert txn.status == "completed"
    late = InboundEvent.objects.get(event_id=event_id_of(older))
    assert late.status == "processed" and "already completed" in late.note
    assert not webhook_audit(late.event_id).exists()


def test_an_automatic_capture_payment_found_authorized_is_captured_as_the_normal_flow_continues(
    stripe_webhooks, localstripe_url, lost_stripe_answers, merchant_a, deliver,
):
    # given an automatic-capture payment whose PaymentIntent is only authorized at Stripe
    lost_stripe_answers.options["manual_at_gateway"] = True
    txn = stuck_stripe_payment(merchant_a, amount=4200)
    (charged,) = lost_stripe_answers.made
    intent = intent_object(localstripe_url, charged.reference)
    assert intent["status"] == "requires_capture"

    # when Stripe reports the amount capturable
    payload = stripe_event("payment_intent.amount_capturable_updated", intent)
    assert deliver.stripe(payload).status_code == 200

    # then FlowPay records it authorized, then captures it at Stripe, as after any authorization
    txn.refresh_from_db()
    assert (txn.status, txn.amount_captured, txn.gateway_reference) == ("completed", 4200, charged.reference)
    assert intent_object(localstripe_url, charged.reference)["status"] == "succeeded"
    row = InboundEvent.objects.get()
    assert row.status == "processed" and "processing → authorized" in row.note and "captured → completed" in row.note
    assert list(webhook_audit(row.event_id).values_list("action", flat=True).order_by("id")) == [
        "transaction.resolved", "transaction.capture",
    ]


# --- localstripe delivers its own signed event to a live FlowPay --------------------------
@pytest.mark.django_db(transaction=True)
def test_localstripe_delivers_its_signed_event_to_a_live_flowpay_which_settles_the_payment(
    stripe_webhooks, localstripe_url, lost_stripe_answers, live_server, celery_eager, make_merchant,
):
    # given localstripe sends its payment_intent.succeeded events to this live FlowPay
    hook = f"flowpay-inbound-{uuid.uuid4().hex[:8]}"
    register = requests.post(f"{localstripe_url}/_config/webhooks/{hook}", timeout=5, json={
        "url": f"{live_server.url}/webhooks/stripe", "secret": SECRET, "events": ["payment_intent.succeeded"],
    })
    assert register.status_code == 200
    try:
        # when a payment's answer is lost (localstripe made it and will announce it)
        txn = stuck_stripe_payment(make_merchant("Live"), amount=3100)
        (charged,) = lost_stripe_answers.made

        # then the event localstripe signed and delivered settles it
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            txn.refresh_from_db()
            if txn.status != "processing":
                break
            time.sleep(0.2)
        assert (txn.status, txn.gateway_reference, txn.amount_captured) == ("completed", charged.reference, 3100)
        row = InboundEvent.objects.get(object_reference=charged.reference)
        assert (row.type, row.status, row.flowpay_reference) == ("payment_intent.succeeded", "processed", txn.public_id)
    finally:
        # localstripe keeps its webhooks for the session: point this one at no event again
        requests.post(f"{localstripe_url}/_config/webhooks/{hook}", timeout=5, json={
            "url": f"{live_server.url}/webhooks/stripe", "secret": SECRET, "events": ["flowpay.test.disabled"],
        })
