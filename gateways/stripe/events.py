"""Stripe webhooks: signature verification and the event's normalisation into a
WebhookEvent, and Stripe events → FlowPay changes (see gateways.events).

Acted on:
- payment_intent.succeeded | .payment_failed | .requires_action | .amount_capturable_updated
  | .canceled | .processing: the PaymentIntent's new state (found by its id or by the
  `flowpay_transaction` metadata FlowPay writes on every PaymentIntent);
- refund.created | refund.updated | refund.failed | charge.refund.updated: the refund's state
  (found by its id or the `flowpay_idempotency_key` metadata FlowPay writes on every refund);
  charge.refunded: each refund listed in the charge (API versions that list them; later
  versions send the refund.* events, which settle the same refunds);
- charge.dispute.created | .updated | .closed: the dispute's state.
Everything else is recorded and ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import stripe

from gateways.base import WebhookEvent, WebhookVerificationError
from gateways.event_types import DisputeChange, EventChanges, PaymentChange, RefundChange
from gateways.stripe.mapping import METADATA_IDEMPOTENCY_KEY, METADATA_TRANSACTION, plain, utc

WEBHOOK_TOLERANCE_SECONDS = 300

PAYMENT_EVENT_STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.amount_capturable_updated": "requires_capture",
    "payment_intent.canceled": "canceled",
    "payment_intent.processing": "processing",
}
REFUND_EVENTS = {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
DISPUTE_EVENTS = {"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"}

REFUND_STATUS = {
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
    "pending": "pending",
    "requires_action": "pending",
}
# warning_* are inquiries (retrieval requests) before a chargeback; an inquiry closed
# without one (warning_closed) kept the merchant's money, as a won dispute does.
DISPUTE_STATUS = {
    "warning_needs_response": "needs_response",
    "needs_response": "needs_response",
    "warning_under_review": "under_review",
    "under_review": "under_review",
    "won": "won",
    "warning_closed": "won",
    "lost": "lost",
}


# --- the verified event ----------------------------------------------------------------
def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header from Django's case-insensitive headers, a plain dict in any case, or META."""
    value = headers.get(name) if hasattr(headers, "get") else None
    if value:
        return value
    wanted = {name.lower(), "http_" + name.lower().replace("-", "_")}
    for key, candidate in headers.items():
        if str(key).lower() in wanted:
            return candidate
    return None


def verified_event(payload: bytes, headers: Mapping[str, str], *, secrets: list[str]) -> dict:
    """The event document, once its Stripe-Signature matches one of `secrets` (several while
    an endpoint secret is rotated) within the tolerance; else WebhookVerificationError."""
    if not secrets:
        raise WebhookVerificationError("No Stripe webhook signing secret is configured.")
    signature = header(headers, "Stripe-Signature")
    if not signature:
        raise WebhookVerificationError("The Stripe-Signature header is missing.")
    event, failures = None, []
    for secret in secrets:
        try:
            event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
            break
        except stripe.SignatureVerificationError as exc:
            failures.append(exc.user_message or "signature mismatch")
        except Exception:  # verified, but not a JSON Stripe event (or undecodable)
            raise WebhookVerificationError("The webhook payload is not a Stripe event.") from None
    if event is None:
        # A stale timestamp is the more useful reason when one secret matched.
        reason = next((f for f in failures if "tolerance" in f), failures[-1] if failures else "")
        raise WebhookVerificationError(f"Stripe webhook signature verification failed: {reason}")
    return plain(event)


def webhook_event(body: dict) -> WebhookEvent:
    """A verified event document as FlowPay's WebhookEvent."""
    try:
        obj = (body.get("data") or {}).get("object") or {}
        if not isinstance(obj, dict):
            obj = {}
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        return WebhookEvent(
            id=str(body["id"]),
            gateway="stripe",
            type=str(body["type"]),
            created=utc(body["created"]),
            object_type=str(obj.get("object") or ""),
            object_reference=obj.get("id"),
            flowpay_reference=metadata.get(METADATA_TRANSACTION) or None,
            data=obj,
            livemode=bool(body.get("livemode", False)),
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise WebhookVerificationError("The webhook payload is not a complete Stripe event.") from None


# --- event -> changes ------------------------------------------------------------------
def stripe_event_changes(event: WebhookEvent) -> EventChanges:
    obj = event.data if isinstance(event.data, dict) else {}
    if event.type in PAYMENT_EVENT_STATUS:
        return EventChanges(payment=_payment(event, obj))
    if event.type in REFUND_EVENTS:
        return EventChanges(refunds=(_refund(obj, forced_status="failed" if event.type == "refund.failed" else None),))
    if event.type == "charge.refunded":
        listed = (obj.get("refunds") or {}).get("data") if isinstance(obj.get("refunds"), dict) else None
        if not listed:
            return EventChanges(unsupported="the charge does not list its refunds; the refund.* events settle them")
        charge_refs = tuple(r for r in (obj.get("payment_intent"), obj.get("id")) if isinstance(r, str) and r)
        return EventChanges(refunds=tuple(_refund(r, default_payment_references=charge_refs) for r in listed if isinstance(r, dict)))
    if event.type in DISPUTE_EVENTS:
        return EventChanges(dispute=_dispute(obj))
    return EventChanges(unsupported=f"FlowPay does not act on {event.type} events")


def _payment(event: WebhookEvent, obj: dict) -> PaymentChange:
    status = PAYMENT_EVENT_STATUS[event.type]
    error = obj.get("last_payment_error") if isinstance(obj.get("last_payment_error"), dict) else {}
    if "amount_received" in obj:
        captured = int(obj.get("amount_received") or 0)
    else:  # localstripe's PaymentIntents have no amount_received: a succeeded one took its amount
        captured = int(obj.get("amount") or 0) if status == "succeeded" else 0
    return PaymentChange(
        status=status,
        references=tuple(r for r in (obj.get("id"),) if isinstance(r, str) and r),
        flowpay_reference=event.flowpay_reference,
        amount_captured=captured,
        failure_code=(error.get("decline_code") or error.get("code") or ("card_declined" if status == "failed" else None)),
        failure_message=str(error.get("message") or "")[:500],
        next_action=obj.get("next_action") if status == "requires_action" and isinstance(obj.get("next_action"), dict) else None,
    )


def _refund(obj: dict, *, forced_status: str | None = None, default_payment_references: tuple[str, ...] = ()) -> RefundChange:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    references = tuple(r for r in (obj.get("payment_intent"), obj.get("charge")) if isinstance(r, str) and r)
    return RefundChange(
        reference=obj.get("id") if isinstance(obj.get("id"), str) else None,
        status=forced_status or REFUND_STATUS.get(str(obj.get("status") or ""), "pending"),
        amount=int(obj.get("amount") or 0),
        payment_references=references or default_payment_references,
        idempotency_key=metadata.get(METADATA_IDEMPOTENCY_KEY) or None,
        failure_code=obj.get("failure_reason") or None,
    )


def _dispute(obj: dict) -> DisputeChange:
    raw_status = str(obj.get("status") or "")
    evidence = obj.get("evidence_details") if isinstance(obj.get("evidence_details"), dict) else {}
    due_by = evidence.get("due_by")
    charge = obj.get("charge")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return DisputeChange(
        reference=str(obj.get("id") or ""),
        status=DISPUTE_STATUS.get(raw_status, "other"),
        gateway_status=raw_status,
        payment_references=tuple(r for r in (obj.get("payment_intent"), charge) if isinstance(r, str) and r),
        flowpay_reference=metadata.get("flowpay_transaction") or None,
        amount=int(obj["amount"]) if obj.get("amount") else None,
        currency=str(obj.get("currency") or "").upper(),
        reason=str(obj.get("reason") or "")[:500],
        evidence_due_by=dt.datetime.fromtimestamp(int(due_by), tz=dt.UTC) if due_by else None,
        fee=_dispute_fee(obj),
    )


def _dispute_fee(obj: dict) -> int | None:
    """Stripe's dispute fee: the fees of the dispute's withdrawal balance transactions."""
    withdrawals = [bt for bt in obj.get("balance_transactions") or [] if isinstance(bt, dict) and int(bt.get("amount") or 0) < 0]
    if not withdrawals:
        return None
    return sum(int(bt.get("fee") or 0) for bt in withdrawals)
