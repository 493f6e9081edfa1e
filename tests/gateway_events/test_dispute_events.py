"""Inbound dispute events (charge.dispute.*): they drive the chargeback forward only and
converge whatever order they arrive in.

Stripe events are signed with Stripe's scheme and are about real PaymentIntents made at a
real localstripe (tests/support/inbound_webhooks.py: `deliver`, `stripe_webhooks`)."""

import datetime as dt
import time
from io import StringIO

import pytest
from django.core.management import call_command

from audit.models import AuditEntry
from core.actors import Actor
from gateway_events.models import InboundEvent
from payments.models import Transaction
from refunds.models import Chargeback
from tests.support.inbound_webhooks import event_id_of, intent_object, stripe_event, threeds_payment_method, webhook_audit

pytestmark = pytest.mark.django_db


def dispute(txn: Transaction, *, dispute_id: str = "dp_1InboundTest", status: str = "needs_response", amount: int | None = None) -> dict:
    return {
        "id": dispute_id, "object": "dispute", "amount": amount or txn.amount_captured, "currency": "usd",
        "charge": "ch_1InboundTest", "payment_intent": txn.gateway_reference, "reason": "fraudulent",
        "status": status, "is_charge_refundable": False, "created": int(time.time()), "metadata": {},
        "evidence_details": {"due_by": int(time.time()) + 7 * 86400, "has_evidence": False, "past_due": False,
                             "submission_count": 0},
    }


def test_dispute_lifecycle_created_updated_closed_drives_the_chargeback(stripe_webhooks, merchant_a, make_payment, deliver):
    txn = make_payment(merchant_a, amount=3000)

    created = stripe_event("charge.dispute.created", dispute(txn))
    assert deliver.stripe(created).status_code == 200
    chargeback = Chargeback.objects.get()
    assert (chargeback.transaction_id, chargeback.chargeback_reference, chargeback.status) == (txn.pk, "dp_1InboundTest", "needs_response")
    assert (chargeback.gateway, chargeback.gateway_reference, chargeback.amount) == ("stripe", "dp_1InboundTest", 3000)
    assert (chargeback.initiated_by_type, chargeback.initiated_by_id) == ("webhook", f"stripe:{event_id_of(created)}")
    assert chargeback.reason == "fraudulent" and chargeback.evidence_due_by > dt.datetime.now(dt.UTC) + dt.timedelta(days=6)

    assert deliver.stripe(stripe_event("charge.dispute.updated", dispute(txn, status="under_review"))).status_code == 200
    chargeback.refresh_from_db()
    assert chargeback.status == "under_review"

    closed = stripe_event("charge.dispute.closed", dispute(txn, status="lost"))
    assert deliver.stripe(closed).status_code == 200
    chargeback.refresh_from_db()
    assert (chargeback.status, chargeback.amount_withdrawn) == ("lost", 3000)
    txn.refresh_from_db()
    assert (txn.disputed, txn.amount_disputed) == (True, 3000)
    assert set(webhook_audit(event_id_of(closed)).values_list("action", flat=True)) == {"chargeback.lost", "transaction.disputed"}
    assert list(InboundEvent.objects.values_list("status", flat=True)) == ["processed"] * 3


def test_gateway_dispute_states_move_a_chargeback_forward_only(merchant_a, make_payment):
    from refunds.services.chargebacks import chargeback_apply_gateway_status, chargeback_create

    actor = Actor(type="webhook", id="paypal:WH-1")
    txn = make_payment(merchant_a, amount=1000)
    accepted, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="PP-D-1", amount=400, reason="",
                                    actor=actor, gateway="paypal", gateway_reference="PP-D-1")
    reviewed, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="PP-D-2", amount=300, reason="",
                                    actor=actor, gateway="paypal", gateway_reference="PP-D-2")

    assert chargeback_apply_gateway_status(chargeback_id=accepted.pk, status="accepted", actor=actor)[0].status == "accepted"
    assert chargeback_apply_gateway_status(chargeback_id=accepted.pk, status="won", actor=actor)[1] is False
    assert chargeback_apply_gateway_status(chargeback_id=reviewed.pk, status="under_review", actor=actor)[0].status == "under_review"
    assert chargeback_apply_gateway_status(chargeback_id=reviewed.pk, status="needs_response", actor=actor)[1] is False
    assert chargeback_apply_gateway_status(chargeback_id=reviewed.pk, status="accepted", actor=actor)[0].status == "lost"
    txn.refresh_from_db()
    assert txn.amount_disputed == 700


def test_dispute_closed_before_created_converges(stripe_webhooks, merchant_a, make_payment, deliver):
    txn = make_payment(merchant_a, amount=3000)
    created = stripe_event("charge.dispute.created", dispute(txn), created=int(time.time()) - 120)
    updated = stripe_event("charge.dispute.updated", dispute(txn, status="under_review"), created=int(time.time()) - 60)
    closed = stripe_event("charge.dispute.closed", dispute(txn, status="won"))

    # when the closing event arrives first, then the others late
    for payload in (closed, created, updated):
        assert deliver.stripe(payload).status_code == 200

    # then there is one chargeback, won, and the late events changed nothing
    chargeback = Chargeback.objects.get()
    assert (chargeback.status, chargeback.amount_reinstated, chargeback.amount_withdrawn) == ("won", 3000, 0)
    txn.refresh_from_db()
    assert (txn.disputed, txn.amount_disputed) == (False, 0)
    notes = {row.event_id: row for row in InboundEvent.objects.all()}
    assert notes[event_id_of(closed)].note == f"{chargeback.public_id} recorded for {txn.public_id}; {chargeback.public_id}: needs_response → won"
    assert "already won" in notes[event_id_of(created)].note and "already won" in notes[event_id_of(updated)].note
    assert {row.status for row in notes.values()} == {"processed"}
    assert list(AuditEntry.objects.filter(actor_type="webhook").values_list("action", flat=True).order_by("id")) == [
        "chargeback.create", "chargeback.won",
    ]


def test_a_dispute_before_its_payment_is_captured_fails_then_converges_on_replay(
    stripe_webhooks, localstripe_url, merchant_a, make_payment, deliver, settings,
):
    # given a payment waiting for 3-D Secure, and its events delivered out of order: the
    # dispute before the payment's success
    settings.FLOWPAY_INBOUND_EVENT_MAX_ATTEMPTS = 1
    txn = make_payment(merchant_a, payment_method=threeds_payment_method(localstripe_url))
    assert txn.status == "requires_action"
    disputed = stripe_event("charge.dispute.created", {**dispute(txn), "amount": txn.amount})

    # then the dispute cannot be recorded yet: failed, with the reason
    assert deliver.stripe(disputed).status_code == 200
    row = InboundEvent.objects.get()
    assert row.status == "failed" and "waiting for its capture" in row.error

    # when the payment's success arrives and the failed events are replayed
    intent = intent_object(localstripe_url, txn.gateway_reference, status="succeeded", amount_received=txn.amount)
    assert deliver.stripe(stripe_event("payment_intent.succeeded", intent)).status_code == 200
    with deliver.capture(execute=True):
        call_command("replay_webhook_events", "--failed", stdout=StringIO())

    # then the chargeback is recorded
    row.refresh_from_db()
    assert (row.status, row.error) == ("processed", "")
    assert Chargeback.objects.get().transaction_id == txn.pk
