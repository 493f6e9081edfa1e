"""Inbound gateway webhooks: POST /webhooks/stripe and /webhooks/paypal, the
inbox, the processing task and replay_webhook_events.

Stripe events are signed here with Stripe's scheme (`Stripe-Signature: t=<ts>,v1=<HMAC-SHA256
of "<ts>.<body>">`, what stripe.WebhookSignature verifies) and are about real PaymentIntents
and refunds made at a real localstripe; one test has localstripe itself deliver its signed
event to a live FlowPay server. PayPal events are verified through the local fake's
verify-webhook-signature endpoint (tests/support/paypal_fake.py)."""

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
import types
import uuid
from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEntry
from core.actors import Actor
from core.carddata import luhn_valid
from gateway_events.models import InboundEvent
from gateways import credentials, registry
from gateways.base import GatewayTimeout
from gateways.credentials import credentials_reload, gateway_credentials
from gateways.paypal.adapter import PayPalGateway, clear_token_cache
from gateways.stripe.adapter import StripeGateway
from payments.models import PaymentAttempt, Transaction
from payments.services.transactions import PaymentInput, transaction_create
from refunds.models import Chargeback
from refunds.services.refunds import refund_create, refund_execute
from tests.support.paypal_fake import FakePayPal, fixture
from webhooks.models import OutboxEvent

pytestmark = pytest.mark.django_db

SECRET = "whsec_inbound_test_secret"
PAYPAL_CLIENT_ID = "AdFlowPayInboundClient"
PAYPAL_CLIENT_SECRET = "EKflowpay-inbound-secret-7x2q"
PAYPAL_WEBHOOK_ID = "4JH86294D6297924G"
SYSTEM = Actor.system("test")


# --- helpers --------------------------------------------------------------------------------
def sign(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def stripe_event(event_type: str, obj: dict, *, event_id: str | None = None, created: int | None = None) -> bytes:
    return json.dumps({
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "api_version": "2024-06-20",
        "created": created or int(time.time()), "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "type": event_type, "data": {"object": obj},
    }, indent=2).encode()


def localstripe_get(localstripe_url: str, path: str) -> dict:
    key = gateway_credentials("stripe").api_key
    response = requests.get(f"{localstripe_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    response.raise_for_status()
    return response.json()


def threeds_payment_method(localstripe_url: str) -> str:
    """A card that requires 3-D Secure, created directly at localstripe (FlowPay never sees it)."""
    key = gateway_credentials("stripe").api_key
    response = requests.post(f"{localstripe_url}/v1/payment_methods", headers={"Authorization": f"Bearer {key}"}, timeout=5, data={
        "type": "card", "card[number]": "4000002500003155", "card[exp_month]": "12", "card[exp_year]": "2030", "card[cvc]": "123",
    })
    response.raise_for_status()
    return response.json()["id"]


def webhook_audit(event_id: str):
    return AuditEntry.objects.filter(actor_type="webhook", actor_id=f"stripe:{event_id}")


def event_id_of(payload: bytes) -> str:
    return json.loads(payload)["id"]


class Deliver:
    """POSTs a webhook the way the gateway does (raw bytes), with the task running at once
    when the inbox row commits (eager Celery, on-commit callbacks executed)."""

    def __init__(self, client, capture):
        self.client = client
        self.capture = capture

    def stripe(self, payload: bytes, *, header: str | None = None, secret: str = SECRET, timestamp: int | None = None):
        signature = sign(payload, secret, timestamp) if header is None else header
        extra = {"HTTP_STRIPE_SIGNATURE": signature} if signature else {}
        with self.capture(execute=True):
            return self.client.post("/webhooks/stripe", data=payload, content_type="application/json", **extra)

    def paypal(self, payload: bytes, headers: dict | None = None):
        headers = fixture("webhook_headers") if headers is None else headers
        meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
        with self.capture(execute=True):
            return self.client.post("/webhooks/paypal", data=payload, content_type="application/json", **meta)


@pytest.fixture
def deliver(client, celery_eager, django_capture_on_commit_callbacks) -> Deliver:
    return Deliver(client, django_capture_on_commit_callbacks)


@pytest.fixture
def stripe_webhooks(stripe_gateway, settings, monkeypatch):
    """Stripe is the payment gateway (localstripe) and its webhook signing secret is SECRET."""
    settings.FLOWPAY_GATEWAYS = ["stripe"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "stripe", StripeGateway)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    credentials_reload()
    registry.gateway_named.cache_clear()
    yield stripe_gateway
    registry.gateway_named.cache_clear()


@pytest.fixture
def lost_stripe_answers(monkeypatch):
    """Stripe's answers to authorizations are lost: the PaymentIntent is made at localstripe,
    FlowPay sees a timeout and leaves the payment processing. `manual_at_gateway` makes it a
    manual-capture PaymentIntent whatever FlowPay asked (to get one found authorized)."""
    made: list = []
    original = StripeGateway.authorize
    options = {"manual_at_gateway": False}

    def authorize(self, *, payment, idempotency_key):
        if options["manual_at_gateway"]:
            payment = dataclasses.replace(payment, capture=False)
        made.append(original(self, payment=payment, idempotency_key=idempotency_key))
        raise GatewayTimeout("Stripe did not answer the authorize (outcome unknown): test")

    monkeypatch.setattr(StripeGateway, "authorize", authorize)
    return types.SimpleNamespace(made=made, options=options)


def stuck_stripe_payment(account, *, amount=1999, payment_method="pm_card_visa") -> Transaction:
    txn = transaction_create(
        merchant=account.merchant,
        payment=PaymentInput(amount=amount, currency="USD", payment_method=payment_method),
        actor=SYSTEM,
    )
    assert (txn.status, txn.gateway, txn.gateway_reference) == ("processing", "stripe", "")
    return txn


def intent_object(localstripe_url: str, reference: str, **overrides) -> dict:
    intent = localstripe_get(localstripe_url, f"/v1/payment_intents/{reference}")
    return {**intent, **overrides}


# --- payments -------------------------------------------------------------------------------
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


# --- refunds --------------------------------------------------------------------------------
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


# --- chargebacks ----------------------------------------------------------------------------
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


# --- verification: nothing stored for what cannot be verified -------------------------------
@pytest.mark.parametrize("tamper", ["forged_signature", "altered_byte", "stale_timestamp", "missing_header", "wrong_secret"])
def test_unverifiable_deliveries_are_rejected_with_400_and_nothing_is_stored(
    stripe_webhooks, localstripe_url, lost_stripe_answers, merchant_a, deliver, tamper,
):
    txn = stuck_stripe_payment(merchant_a)
    (charged,) = lost_stripe_answers.made
    payload = stripe_event("payment_intent.succeeded", intent_object(localstripe_url, charged.reference))
    header = sign(payload)
    if tamper == "forged_signature":
        header = header.split(",v1=")[0] + ",v1=" + "0" * 64
    elif tamper == "altered_byte":
        altered = payload.replace(b'"amount": 1999', b'"amount": 1998', 1)
        assert altered != payload
        payload = altered
    elif tamper == "stale_timestamp":
        header = sign(payload, timestamp=int(time.time()) - 301)
    elif tamper == "missing_header":
        header = ""
    elif tamper == "wrong_secret":
        header = sign(payload, secret="whsec_somebody_else")
    audit_before = AuditEntry.objects.count()

    response = deliver.stripe(payload, header=header)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "webhook_signature_invalid")
    assert not InboundEvent.objects.exists()
    assert AuditEntry.objects.count() == audit_before
    txn.refresh_from_db()
    assert txn.status == "processing"


def test_the_same_event_delivered_twice_has_one_effect(stripe_webhooks, localstripe_url, lost_stripe_answers, merchant_a, deliver):
    txn = stuck_stripe_payment(merchant_a)
    (charged,) = lost_stripe_answers.made
    payload = stripe_event("payment_intent.succeeded", intent_object(localstripe_url, charged.reference))

    first = deliver.stripe(payload)
    second = deliver.stripe(payload, timestamp=int(time.time()) + 1)  # Stripe's retry: same event, new signature

    assert (first.status_code, first.json()) == (200, {"received": True, "duplicate": False})
    assert (second.status_code, second.json()) == (200, {"received": True, "duplicate": True})
    assert InboundEvent.objects.count() == 1
    assert InboundEvent.objects.get().attempts == 1
    assert webhook_audit(event_id_of(payload)).count() == 1
    assert AuditEntry.objects.filter(object_id=txn.public_id, action="transaction.resolved").count() == 1
    # and the merchant is told once (the outbox event written with the change)
    assert OutboxEvent.objects.filter(merchant=merchant_a.merchant, type="transaction.completed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_the_same_event_store_one_row_and_apply_it_once(
    stripe_webhooks, localstripe_url, lost_stripe_answers, make_merchant, celery_eager,
):
    from django.db import connection
    from django.test import Client

    txn = stuck_stripe_payment(make_merchant("Concurrent"))
    (charged,) = lost_stripe_answers.made
    payload = stripe_event("payment_intent.succeeded", intent_object(localstripe_url, charged.reference))
    barrier, answers = threading.Barrier(8), []

    def gateway_retry():
        try:
            barrier.wait(timeout=10)
            response = Client().post("/webhooks/stripe", data=payload, content_type="application/json",
                                     HTTP_STRIPE_SIGNATURE=sign(payload))
            answers.append((response.status_code, response.json().get("duplicate")))
        finally:
            connection.close()

    threads = [threading.Thread(target=gateway_retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answers) == [(200, False)] + [(200, True)] * 7
    assert InboundEvent.objects.count() == 1
    assert InboundEvent.objects.get().status == "processed"
    txn.refresh_from_db()
    assert txn.status == "completed"
    assert AuditEntry.objects.filter(object_id=txn.public_id, action="transaction.resolved").count() == 1


def test_an_event_about_an_unknown_payment_or_of_an_unhandled_type_is_ignored(stripe_webhooks, deliver):
    unknown = stripe_event("payment_intent.succeeded", {"id": "pi_1NotFlowPays", "object": "payment_intent",
                                                         "amount": 500, "currency": "usd", "status": "succeeded",
                                                         "metadata": {}})
    other = stripe_event("customer.created", {"id": "cus_1Someone", "object": "customer"})

    assert deliver.stripe(unknown).status_code == 200
    assert deliver.stripe(other).status_code == 200

    rows = {row.type: row for row in InboundEvent.objects.all()}
    assert rows["payment_intent.succeeded"].status == "ignored"
    assert rows["payment_intent.succeeded"].note == "payment pi_1NotFlowPays: unknown to FlowPay"
    assert (rows["customer.created"].status, rows["customer.created"].note) == ("ignored", "FlowPay does not act on customer.created events")
    assert not AuditEntry.objects.filter(actor_type="webhook").exists()


def test_secret_rotation_accepts_events_signed_with_either_secret(stripe_webhooks, monkeypatch, deliver):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_new_one,whsec_old_one")
    credentials_reload()

    for secret in ("whsec_new_one", "whsec_old_one"):
        payload = stripe_event("customer.created", {"id": f"cus_{secret}", "object": "customer"})
        assert deliver.stripe(payload, secret=secret).status_code == 200
    assert deliver.stripe(stripe_event("customer.created", {"id": "cus_x", "object": "customer"})).status_code == 400
    assert InboundEvent.objects.count() == 2


def test_webhooks_of_a_gateway_not_enabled_or_not_configured_are_refused_clearly(stripe_gateway, settings, monkeypatch, client):
    payload = stripe_event("customer.created", {"id": "cus_1", "object": "customer"})
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    credentials_reload()

    settings.FLOWPAY_GATEWAYS = ["simulator"]
    response = client.post("/webhooks/stripe", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(payload))
    assert (response.status_code, response.json()["error"]["code"]) == (404, "resource_missing")

    settings.FLOWPAY_GATEWAYS = ["simulator", "stripe"]
    response = client.post("/webhooks/stripe", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(payload))
    assert (response.status_code, response.json()["error"]["code"]) == (400, "webhook_not_configured")
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["error"]["message"]

    assert client.get("/webhooks/stripe").status_code == 405
    assert client.post("/webhooks/simulator", data=payload, content_type="application/json").status_code == 404
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db(transaction=True)  # the task is queued when the inbox row really commits
def test_a_webhook_is_answered_503_when_its_processing_cannot_be_queued_and_a_redelivery_queues_it(
    stripe_webhooks, monkeypatch, deliver,
):
    from gateway_events.tasks import process_inbound_event_task

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    payload = stripe_event("customer.created", {"id": "cus_1Queued", "object": "customer"})
    with monkeypatch.context() as patch:
        patch.setattr(process_inbound_event_task, "delay", broker_down)
        response = deliver.stripe(payload)
    assert (response.status_code, response.json()["error"]["code"]) == (503, "queue_unavailable")
    assert InboundEvent.objects.get().status == "received"

    response = deliver.stripe(payload)
    assert response.json() == {"received": True, "duplicate": True}
    assert InboundEvent.objects.get().status == "ignored"


# --- card-data guard ------------------------------------------------------------------------
def luhn_valid_digits(length: int) -> str:
    number = int("4" + "1" * (length - 1))
    while not luhn_valid(str(number)):
        number += 1
    return str(number)


def test_a_realistic_event_with_luhn_valid_digit_runs_passes_the_card_data_guard_on_the_webhook_path_only(
    stripe_webhooks, merchant_a, make_payment, deliver,
):
    # given a charge.refunded event as Stripe sends it: a card network's transaction id and
    # an E.164 phone number are long digit runs that can pass the Luhn check by chance
    txn = make_payment(merchant_a)
    network_transaction_id, phone = luhn_valid_digits(15), "+" + luhn_valid_digits(13)
    charge = {
        "id": "ch_1Guard", "object": "charge", "amount": txn.amount, "amount_refunded": 0, "captured": True,
        "payment_intent": txn.gateway_reference, "billing_details": {"phone": phone, "email": "a@example.com"},
        "payment_method_details": {"type": "card", "card": {
            "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "network": "visa",
            "network_transaction_id": network_transaction_id,
        }},
    }
    payload = stripe_event("charge.refunded", charge)

    # then the webhook takes it (verified by its signature), where any other path refuses it
    assert deliver.stripe(payload).status_code == 200
    assert InboundEvent.objects.get().payload["payment_method_details"]["card"]["network_transaction_id"] == network_transaction_id
    refused = merchant_a.client.post("/payment/transactions", data=payload, content_type="application/json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "card_data_not_allowed")


def test_a_forged_webhook_carrying_a_card_number_is_rejected_and_stored_nowhere(stripe_webhooks, deliver):
    payload = stripe_event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent", "card": "4242424242424242"})

    response = deliver.stripe(payload, header="t=1,v1=" + "0" * 64)

    assert response.status_code == 400 and b"4242424242424242" not in response.content
    assert not InboundEvent.objects.exists()


# --- failures and replay --------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)  # tasks run when the replay commits, so --wait sees their outcome
def test_a_failing_application_is_recorded_failed_then_replay_webhook_events_processes_it(
    stripe_webhooks, localstripe_url, lost_stripe_answers, merchant_a, deliver, monkeypatch,
):
    from payments.services import stuck

    txn = stuck_stripe_payment(merchant_a)
    (charged,) = lost_stripe_answers.made
    payload = stripe_event("payment_intent.succeeded", intent_object(localstripe_url, charged.reference))

    def broken(**kwargs):
        raise RuntimeError("database hiccup")

    # given the application fails (every automatic retry too)
    with monkeypatch.context() as patch:
        patch.setattr(stuck, "transaction_apply_gateway_status", broken)
        response = deliver.stripe(payload)

        # then the event is still acknowledged, and recorded failed with the error
        assert response.status_code == 200
        row = InboundEvent.objects.get()
        assert (row.status, row.error, row.attempts) == ("failed", "RuntimeError: database hiccup", 5)
        txn.refresh_from_db()
        assert txn.status == "processing"

        # and replaying while it still fails reports it (exit 1 with --wait)
        out = StringIO()
        with pytest.raises(SystemExit) as exited, deliver.capture(execute=True):
            call_command("replay_webhook_events", "--failed", "--wait", "1", "--format", "json", stdout=out)
        assert exited.value.code == 1
        document = json.loads(out.getvalue())
        assert document["ok"] is False and document["stillFailed"] == 1

    # when the cause is gone and the operator replays the failed events
    out = StringIO()
    with deliver.capture(execute=True):
        call_command("replay_webhook_events", "--failed", "--format", "json", stdout=out)

    # then it is processed, once
    document = json.loads(out.getvalue())
    assert document["ok"] is True and document["selected"] == 1 and document["queued"] == 1
    assert document["events"][0]["eventId"] == event_id_of(payload) and document["events"][0]["previousStatus"] == "failed"
    row.refresh_from_db()
    assert (row.status, row.error) == ("processed", "")
    txn.refresh_from_db()
    assert txn.status == "completed"
    assert AuditEntry.objects.filter(action="inbound_event.replay", actor_type="system").count() == 2
    # nothing left to replay
    out = StringIO()
    call_command("replay_webhook_events", "--failed", stdout=out)
    assert "OK: no events to replay." in out.getvalue()


def test_replay_webhook_events_usage_errors(stripe_webhooks, deliver):
    from django.core.management.base import CommandError

    deliver.stripe(stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
    with pytest.raises(CommandError, match="--failed, --stalled or --id"):
        call_command("replay_webhook_events", stdout=StringIO())
    with pytest.raises(CommandError, match="no such inbound event: evt_nope"):
        call_command("replay_webhook_events", "--id", "evt_nope", stdout=StringIO())
    # an ignored event can be replayed by id (e.g. after the object it names was created)
    row = InboundEvent.objects.get()
    out = StringIO()
    with deliver.capture(execute=True):
        call_command("replay_webhook_events", "--id", row.event_id, stdout=out)
    assert "OK: 1 event(s) queued again." in out.getvalue()


def test_the_admin_lists_inbound_events_and_replays_them(stripe_webhooks, admin_client, deliver):
    deliver.stripe(stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
    row = InboundEvent.objects.get()

    assert admin_client.get("/admin/gateway_events/inboundevent/").status_code == 200
    assert admin_client.get(f"/admin/gateway_events/inboundevent/{row.pk}/change/").status_code == 200
    with deliver.capture(execute=True):
        response = admin_client.post("/admin/gateway_events/inboundevent/", {"action": "replay_selected", "_selected_action": [row.pk]})
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="inbound_event.replay", actor_type="staff").count() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("ignored", 2)


def test_events_whose_processing_was_lost_are_queued_again_by_beat(stripe_webhooks, deliver, settings):
    from gateway_events.tasks import requeue_stalled_inbound_events_task

    settings.FLOWPAY_INBOUND_EVENT_LEASE_SECONDS = 600
    long_ago = timezone.now() - dt.timedelta(minutes=20)

    def inbox_row(event_id: str, **fields) -> InboundEvent:
        return InboundEvent.objects.create(gateway="stripe", event_id=event_id, type="customer.created",
                                           payload={"id": "cus_1", "object": "customer"}, gateway_created_at=long_ago, **fields)

    lost_task = inbox_row("evt_lost_task", received_at=long_ago)  # its task never reached a worker
    dead_worker = inbox_row("evt_dead_worker", received_at=long_ago, status="processing", attempts=1, last_attempt_at=long_ago)
    busy = inbox_row("evt_busy", received_at=long_ago, status="processing", attempts=1, last_attempt_at=timezone.now())
    fresh = inbox_row("evt_fresh")  # just received: its task is on its way

    out = StringIO()
    call_command("replay_webhook_events", "--stalled", "--dry-run", "--format", "json", stdout=out)
    assert sorted(e["eventId"] for e in json.loads(out.getvalue())["events"]) == ["evt_dead_worker", "evt_lost_task"]

    with deliver.capture(execute=True):
        assert requeue_stalled_inbound_events_task() == 2

    for row, status, attempts in ((lost_task, "ignored", 1), (dead_worker, "ignored", 2), (busy, "processing", 1),
                                  (fresh, "received", 0)):
        row.refresh_from_db()
        assert (row.event_id, row.status, row.attempts) == (row.event_id, status, attempts)


# --- observability --------------------------------------------------------------------------
def test_webhook_lag_seconds_is_exported(stripe_webhooks, deliver, client):
    payload = stripe_event("customer.created", {"id": "cus_1Lag", "object": "customer"}, created=int(time.time()) - 42)
    assert deliver.stripe(payload).status_code == 200

    body = client.get("/metrics").content.decode()

    assert 'webhook_lag_seconds_bucket{gateway="stripe",le="60.0",outcome="ignored"}' in body
    assert 'webhook_lag_seconds_count{gateway="stripe",outcome="ignored"}' in body


# --- PayPal -----------------------------------------------------------------------------------
@pytest.fixture
def paypal(settings, monkeypatch):
    fake = FakePayPal(client_id=PAYPAL_CLIENT_ID, client_secret=PAYPAL_CLIENT_SECRET).start()
    monkeypatch.setenv("PAYPAL_CLIENT_ID", PAYPAL_CLIENT_ID)
    monkeypatch.setenv("PAYPAL_CLIENT_SECRET", PAYPAL_CLIENT_SECRET)
    monkeypatch.setenv("PAYPAL_API_BASE", fake.url)
    monkeypatch.setenv("PAYPAL_WEBHOOK_ID", PAYPAL_WEBHOOK_ID)
    settings.FLOWPAY_GATEWAYS = ["paypal"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "paypal", PayPalGateway)
    credentials.credentials_reload()
    clear_token_cache()
    registry.gateway_named.cache_clear()
    yield fake
    fake.stop()
    monkeypatch.undo()
    credentials.credentials_reload()
    clear_token_cache()
    registry.gateway_named.cache_clear()


def paypal_event(event_type: str, resource_type: str, resource: dict) -> bytes:
    return json.dumps({
        "id": f"WH-{uuid.uuid4().hex[:17].upper()}-{uuid.uuid4().hex[:17].upper()}", "event_version": "1.0",
        "create_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "resource_type": resource_type,
        "resource_version": "2.0", "event_type": event_type, "summary": event_type, "resource": resource, "links": [],
    }, indent=2).encode()


def test_paypal_capture_completed_and_dispute_created_through_the_verify_endpoint(paypal, merchant_a, deliver):
    # given a PayPal payment whose answer was lost (PayPal answered 500): processing
    paypal.queue("POST", "/v2/checkout/orders", status=500, fixture="error_500_internal_server_error")
    txn = transaction_create(merchant=merchant_a.merchant, payment=PaymentInput(amount=1999, currency="USD", payment_method="8kk8451t"),
                             actor=SYSTEM)
    assert (txn.status, txn.gateway) == ("processing", "paypal")

    # when PayPal sends PAYMENT.CAPTURE.COMPLETED for it (custom_id is FlowPay's transaction id)
    capture = {
        "id": "7TK53561YB803214S", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "19.99"},
        "final_capture": True, "custom_id": txn.public_id, "invoice_id": f"flowpay:{txn.public_id}:authorize:1",
        "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}},
        "create_time": "2026-11-21T10:00:00Z", "update_time": "2026-11-21T10:00:00Z",
    }
    completed = paypal_event("PAYMENT.CAPTURE.COMPLETED", "capture", capture)
    response = deliver.paypal(completed)

    # then PayPal was asked to verify it, and the payment is completed with the capture id
    assert response.status_code == 200, response.content
    (verify,) = paypal.received("POST", "/v1/notifications/verify-webhook-signature")
    assert verify.json["webhook_id"] == PAYPAL_WEBHOOK_ID and verify.json["webhook_event"] == json.loads(completed)
    txn.refresh_from_db()
    assert (txn.status, txn.gateway_reference, txn.amount_captured) == ("completed", "7TK53561YB803214S", 1999)
    assert AuditEntry.objects.filter(actor_type="webhook", actor_id=f"paypal:{json.loads(completed)['id']}",
                                     action="transaction.resolved").count() == 1

    # when the buyer disputes it
    dispute_resource = {
        "dispute_id": "PP-D-27803", "create_time": "2026-11-21T11:00:00.000Z", "update_time": "2026-11-21T11:00:00.000Z",
        "disputed_transactions": [{"seller_transaction_id": "7TK53561YB803214S", "gross_amount": {"currency_code": "USD", "value": "19.99"}}],
        "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED", "status": "WAITING_FOR_SELLER_RESPONSE",
        "dispute_amount": {"currency_code": "USD", "value": "19.99"}, "seller_response_due_date": "2026-12-01T11:00:00.000Z",
        "dispute_life_cycle_stage": "CHARGEBACK", "dispute_channel": "EXTERNAL",
    }
    assert deliver.paypal(paypal_event("CUSTOMER.DISPUTE.CREATED", "dispute", dispute_resource)).status_code == 200

    # then a chargeback is recorded for it
    chargeback = Chargeback.objects.get()
    assert (chargeback.transaction_id, chargeback.chargeback_reference, chargeback.status) == (txn.pk, "PP-D-27803", "needs_response")
    assert (chargeback.amount, chargeback.gateway, chargeback.reason) == (1999, "paypal", "MERCHANDISE_OR_SERVICE_NOT_RECEIVED")
    assert chargeback.evidence_due_by == dt.datetime(2026, 12, 1, 11, tzinfo=dt.UTC)
    assert InboundEvent.objects.get(type="CUSTOMER.DISPUTE.CREATED").object_reference == "PP-D-27803"

    # and once PayPal resolves it in the seller's favour, it is won
    resolved = {**dispute_resource, "status": "RESOLVED", "dispute_outcome": {"outcome_code": "RESOLVED_SELLER_FAVOUR"}}
    assert deliver.paypal(paypal_event("CUSTOMER.DISPUTE.RESOLVED", "dispute", resolved)).status_code == 200
    chargeback.refresh_from_db()
    assert chargeback.status == "won"


def test_a_paypal_webhook_paypal_does_not_verify_is_rejected_and_stored_nowhere(paypal, deliver):
    paypal.queue("POST", "/v1/notifications/verify-webhook-signature", fixture="verify_webhook_signature_failure")

    response = deliver.paypal(paypal_event("PAYMENT.CAPTURE.COMPLETED", "capture", {"id": "1", "status": "COMPLETED"}))

    assert (response.status_code, response.json()["error"]["code"]) == (400, "webhook_signature_invalid")
    assert not InboundEvent.objects.exists()


# --- localstripe delivers its own signed event to a live FlowPay -------------------------------
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


# --- what events mean (the gateways' translators, no I/O) ---------------------------------------
def webhook_event(gateway: str, event_type: str, data: dict, flowpay_reference: str | None = None):
    from gateways.base import WebhookEvent

    return WebhookEvent(id="evt_t", gateway=gateway, type=event_type, created=dt.datetime.now(dt.UTC),
                        object_type="", object_reference=data.get("id"), flowpay_reference=flowpay_reference, data=data)


def test_stripe_events_translate_to_flowpay_changes():
    from gateways.events import webhook_event_changes

    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "refunds": {"object": "list", "data": [
        {"id": "re_a", "object": "refund", "amount": 300, "status": "succeeded", "charge": "ch_1",
         "metadata": {"flowpay_idempotency_key": "flowpay:re_Ours:refund"}},
        {"id": "re_b", "object": "refund", "amount": 200, "status": "pending", "charge": "ch_1"},
    ]}}
    refunds = webhook_event_changes(webhook_event("stripe", "charge.refunded", charge)).refunds
    assert [(r.reference, r.status, r.amount, r.idempotency_key) for r in refunds] == [
        ("re_a", "succeeded", 300, "flowpay:re_Ours:refund"), ("re_b", "pending", 200, None),
    ]
    assert refunds[1].payment_references == ("ch_1",)
    assert webhook_event_changes(webhook_event("stripe", "charge.refunded", {"id": "ch_2", "object": "charge"})).unsupported

    def dispute_status(status):
        return webhook_event_changes(webhook_event("stripe", "charge.dispute.closed", {"id": "dp_1", "status": status})).dispute.status

    assert [dispute_status(s) for s in ("warning_needs_response", "under_review", "won", "warning_closed", "lost", "charge_refunded")] == [
        "needs_response", "under_review", "won", "won", "lost", "other",
    ]
    failed = webhook_event_changes(webhook_event("stripe", "refund.failed", {"id": "re_c", "status": "pending",
                                                                             "failure_reason": "lost_or_stolen_card"}))
    assert (failed.refunds[0].status, failed.refunds[0].failure_code) == ("failed", "lost_or_stolen_card")


def test_paypal_events_translate_to_flowpay_changes():
    from gateways.events import webhook_event_changes

    denied = webhook_event_changes(webhook_event("paypal", "PAYMENT.CAPTURE.DENIED", {
        "id": "CAP1", "status": "DENIED", "custom_id": "txn_1",
        "supplementary_data": {"related_ids": {"order_id": "ORD1", "authorization_id": "AUTH1"}},
    })).payment
    assert (denied.status, denied.references, denied.flowpay_reference) == ("failed", ("CAP1", "AUTH1", "ORD1"), "txn_1")

    refunded = webhook_event_changes(webhook_event("paypal", "PAYMENT.CAPTURE.REFUNDED", {
        "id": "1JU08902781691411", "status": "COMPLETED", "amount": {"value": "10.99", "currency_code": "USD"},
        "links": [{"rel": "self", "href": "https://api.paypal.com/v2/payments/refunds/1JU08902781691411"},
                  {"rel": "up", "href": "https://api.paypal.com/v2/payments/captures/2GG279541U471931P"}],
    })).refunds[0]
    assert (refunded.reference, refunded.status, refunded.amount, refunded.payment_references) == (
        "1JU08902781691411", "succeeded", 1099, ("2GG279541U471931P",))

    def resolved(outcome):
        return webhook_event_changes(webhook_event("paypal", "CUSTOMER.DISPUTE.RESOLVED", {
            "dispute_id": "PP-D-1", "status": "RESOLVED", "dispute_outcome": {"outcome_code": outcome},
        })).dispute.status

    assert [resolved(o) for o in ("RESOLVED_BUYER_FAVOUR", "RESOLVED_SELLER_FAVOUR", "CANCELED_BY_BUYER", "ACCEPTED", "NONE")] == [
        "lost", "won", "won", "accepted", "other",
    ]
    assert webhook_event_changes(webhook_event("paypal", "BILLING.PLAN.CREATED", {})).unsupported
