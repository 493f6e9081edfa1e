"""Inbound gateway webhooks: the inbox and the application of its events.

1. `inbound_event_record` (the webhook view, after the adapter verified the signature)
   inserts the event into the inbox, unique on (gateway, event id), and queues
   `payments.process_inbound_event` once that commits. A redelivery finds the first row and
   has no second effect (it only re-queues an event that has not been processed yet).
2. `inbound_event_process` (the task) claims the row with a conditional UPDATE
   (received | failed | processing whose lease expired → processing), applies the event
   through the same services as the API and the stuck-transaction checker, and records
   processed, ignored (verified, but about nothing FlowPay knows) or failed with the error.
   Every change is audited with actor type `webhook` (id `<gateway>:<event id>`).
3. Failed events are retried by the task with backoff, up to FLOWPAY_INBOUND_EVENT_MAX_ATTEMPTS,
   then wait for `inbound_event_replay` (`manage.py replay_webhook_events`, the admin's
   action). Beat (`inbound_events_requeue_stalled`) queues again events whose task was lost.

Events converge whatever their order: the services only move objects forward (a completed
payment, a closed chargeback or a final refund is never moved back by an older event), and a
dispute closed before FlowPay heard of it is recorded, then closed.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.errors import ErrorCode, FlowPayError, InvalidState
from core.observability.metrics import webhook_lag_seconds
from gateway_events.models import InboundEvent, InboundEventStatus
from gateway_events.tasks import process_inbound_event_task
from gateways.base import WebhookEvent
from gateways.events import DisputeChange, EventChanges, PaymentChange, RefundChange, webhook_event_changes
from payments.models import CaptureMethod, Transaction, TransactionStatus
from payments.models.transactions import CAPTURED_STATES
from payments.services import stuck
from refunds.models import Chargeback
from refunds.services.chargebacks import chargeback_apply_gateway_status, chargeback_create
from refunds.services.recovery import refund_apply_gateway_result, refund_find_for_gateway

logger = logging.getLogger(__name__)

E = InboundEventStatus
ERROR_MAX_LENGTH = 2000
NOTE_MAX_LENGTH = 500


class _OutOfOrder(Exception):
    """An event that needs another one applied first: failed now, retried later."""


class InboxQueueError(FlowPayError):
    """The event is stored but its processing could not be queued (broker down): the
    webhook answers 503 so that the gateway delivers it again, which re-queues it."""

    http_status = 503
    error_type = "api_error"
    code = ErrorCode.QUEUE_UNAVAILABLE


def inbound_event_lease() -> dt.timedelta:
    """How long a claimed event may stay `processing` before another worker may take it
    (longer than the task's time limit)."""
    return dt.timedelta(seconds=settings.FLOWPAY_INBOUND_EVENT_LEASE_SECONDS)


def inbound_event_max_attempts() -> int:
    return settings.FLOWPAY_INBOUND_EVENT_MAX_ATTEMPTS


def inbound_event_retry_delay(attempts: int) -> float:
    """Seconds before the task tries a failed event again: exponential backoff with jitter
    (about 10 s, 20 s, 40 s, 80 s, capped at 10 minutes)."""
    base = settings.FLOWPAY_INBOUND_EVENT_RETRY_BASE_SECONDS
    delay = min(600.0, base * 2 ** max(0, attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def webhook_actor(*, gateway: str, event_id: str) -> Actor:
    return Actor(type=ActorType.WEBHOOK, id=f"{gateway}:{event_id}"[:150])


# --- 1. the inbox --------------------------------------------------------------------------
def inbound_event_record(*, event: WebhookEvent) -> tuple[InboundEvent, bool]:
    """Store a verified event (created=True) or find its first delivery (created=False),
    and queue its processing once the row is committed. Raises InboxQueueError when the
    queue cannot be reached (the row is committed: a redelivery re-queues it)."""
    try:
        subject = webhook_event_changes(event).subject_reference
    except Exception:  # only names the row; processing reports a payload it cannot read
        subject = None
    row = InboundEvent(
        gateway=event.gateway,
        event_id=event.id[:255],
        type=event.type[:100],
        object_type=(event.object_type or "")[:64],
        object_reference=(event.object_reference or subject or "")[:255],
        flowpay_reference=(event.flowpay_reference or "")[:255],
        livemode=event.livemode,
        payload=event.data if isinstance(event.data, dict) else {},
        gateway_created_at=event.created,
    )
    try:
        with transaction.atomic():
            row.save()
            _queue_on_commit(row.pk)
    except IntegrityError:
        existing = InboundEvent.objects.get(gateway=event.gateway, event_id=event.id[:255])
        if existing.status in (E.RECEIVED, E.FAILED):
            # Not processed yet (its task may have been lost): queue it again. Harmless if
            # it is queued already: only one worker can claim it.
            with transaction.atomic():
                _queue_on_commit(existing.pk)
        return existing, False
    return row, True


def _queue_on_commit(inbound_event_id: int) -> None:

    def send() -> None:
        try:
            process_inbound_event_task.delay(inbound_event_id)
        except Exception as exc:
            logger.exception("inbound event stored but its processing could not be queued",
                             extra={"inbound_event": inbound_event_id})
            raise InboxQueueError(f"the event is stored but could not be queued: {type(exc).__name__}") from exc

    transaction.on_commit(send)


# --- 2. processing ---------------------------------------------------------------------------
@dataclass
class _Applied:
    status: str  # processed | ignored
    notes: list[str] = field(default_factory=list)
    after_commit: list[Callable[[], str | None]] = field(default_factory=list)  # gateway calls, outside locks

    @property
    def note(self) -> str:
        return "; ".join(self.notes)[:NOTE_MAX_LENGTH]


def inbound_event_process(*, inbound_event_id: int) -> InboundEvent:
    """Apply one inbox event, once. Returns the row in its resulting state; never raises
    for a failure of the event itself (it is recorded `failed` with the error)."""
    if not _claim(inbound_event_id):
        return InboundEvent.objects.get(pk=inbound_event_id)
    row = InboundEvent.objects.get(pk=inbound_event_id)
    actor = webhook_actor(gateway=row.gateway, event_id=row.event_id)
    try:
        with transaction.atomic():
            locked = InboundEvent.objects.select_for_update().get(pk=inbound_event_id)
            if locked.status != E.PROCESSING:
                return locked  # finished meanwhile by a worker whose lease had expired
            applied = _apply(row=locked, actor=actor)
            if not applied.after_commit:
                return _finish(locked, applied)
        # Follow-ups call a gateway (e.g. capture an automatic-capture payment found
        # authorized): after the event's effects committed, holding no lock. A failure marks
        # the event failed; replaying it re-applies nothing and runs the follow-up again.
        for step in applied.after_commit:
            note = step()
            if note:
                applied.notes.append(note)
        with transaction.atomic():
            return _finish(InboundEvent.objects.select_for_update().get(pk=inbound_event_id), applied)
    except Exception as exc:
        expected = isinstance(exc, (FlowPayError, _OutOfOrder))  # a refusal by a service, or an ordering wait
        logger.warning(
            "inbound event failed: %s", type(exc).__name__, exc_info=not expected,
            extra={"gateway": row.gateway, "event": row.event_id, "event_type": row.type, "error": type(exc).__name__},
        )
        return _fail(inbound_event_id, exc)


def _claim(inbound_event_id: int) -> bool:
    now = timezone.now()
    claimable = Q(status__in=[E.RECEIVED, E.FAILED]) | Q(status=E.PROCESSING, last_attempt_at__lt=now - inbound_event_lease())
    return bool(
        InboundEvent.objects.filter(claimable, pk=inbound_event_id).update(
            status=E.PROCESSING, attempts=F("attempts") + 1, last_attempt_at=now,
        )
    )


def _finish(row: InboundEvent, applied: _Applied) -> InboundEvent:
    now = timezone.now()
    row.status = applied.status
    row.note = applied.note
    row.error = ""
    row.processed_at = now
    row.save(update_fields=["status", "note", "error", "processed_at"])
    lag = max(0.0, (now - row.gateway_created_at).total_seconds())
    transaction.on_commit(lambda: webhook_lag_seconds.labels(gateway=row.gateway, outcome=row.status).observe(lag))
    logger.info("inbound event %s", row.status,
                extra={"gateway": row.gateway, "event": row.event_id, "event_type": row.type, "lag_seconds": round(lag, 3)})
    return row


def _fail(inbound_event_id: int, exc: Exception) -> InboundEvent:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    error = f"{type(exc).__name__}: {message}"[:ERROR_MAX_LENGTH]
    InboundEvent.objects.filter(pk=inbound_event_id, status=E.PROCESSING).update(status=E.FAILED, error=error)
    return InboundEvent.objects.get(pk=inbound_event_id)


def inbound_event_as_webhook_event(row: InboundEvent) -> WebhookEvent:
    return WebhookEvent(
        id=row.event_id, gateway=row.gateway, type=row.type, created=row.gateway_created_at,
        object_type=row.object_type, object_reference=row.object_reference or None,
        flowpay_reference=row.flowpay_reference or None, data=row.payload or {}, livemode=row.livemode,
    )


def _apply(*, row: InboundEvent, actor: Actor) -> _Applied:
    event = inbound_event_as_webhook_event(row)
    changes: EventChanges = webhook_event_changes(event)
    if changes.unsupported:
        return _Applied(status=E.IGNORED, notes=[changes.unsupported])
    applied = _Applied(status=E.IGNORED, notes=list(changes.notes))
    details = {"event": event.id, "event_type": event.type}
    if changes.payment is not None:
        _apply_payment(event, changes.payment, actor=actor, details=details, applied=applied)
    for refund_change in changes.refunds:
        _apply_refund(event, refund_change, actor=actor, applied=applied)
    if changes.dispute is not None:
        _apply_dispute(event, changes.dispute, actor=actor, applied=applied)
    return applied


# --- payments --------------------------------------------------------------------------------
def _transaction_for(gateway: str, references: Iterable[str], flowpay_reference: str | None) -> Transaction | None:
    references = [r for r in references if r]
    if references:
        found = Transaction.objects.filter(gateway=gateway, gateway_reference__in=references).order_by("pk").first()
        if found is not None:
            return found
    if flowpay_reference:
        return Transaction.objects.filter(public_id=flowpay_reference).first()
    return None


def _apply_payment(event: WebhookEvent, change: PaymentChange, *, actor: Actor, details: dict, applied: _Applied) -> None:
    described = change.references[0] if change.references else (change.flowpay_reference or "?")
    txn = _transaction_for(event.gateway, change.references, change.flowpay_reference)
    if txn is None:
        applied.notes.append(f"payment {described}: unknown to FlowPay")
        return
    if txn.gateway != event.gateway:
        applied.notes.append(f"payment {described}: {txn.public_id} is a {txn.gateway or 'not yet routed'} payment, not {event.gateway}")
        return
    if txn.gateway_reference and change.references and txn.gateway_reference not in change.references:
        logger.warning("gateway event about another payment than the transaction's",
                       extra={"transaction": txn.public_id, "event": event.id, "reference": described})
        applied.notes.append(f"payment {described}: {txn.public_id} was made as {txn.gateway_reference}")
        return
    applied.status = E.PROCESSED
    result = stuck.transaction_apply_gateway_status(
        transaction_id=txn.pk, gateway_status=change.status,
        reference=change.references[0] if change.references else None,
        amount_captured=change.amount_captured, actor=actor, failure_code=change.failure_code,
        failure_message=change.failure_message, next_action=change.next_action, allow_recovery=True,
        details=details,
    )
    settled = result.transaction
    if result.changed:
        applied.notes.append(f"{settled.public_id}: {result.previous_status} → {settled.status}")
    else:
        applied.notes.append(f"{settled.public_id}: already {settled.status}, nothing to change ({change.status} at the gateway)")

    def continue_flow() -> str | None:
        after = stuck.transaction_continue_after_settlement(transaction=Transaction.objects.get(pk=settled.pk), actor=actor)
        return f"{after.public_id}: captured → {after.status}" if after.status != settled.status else None

    if settled.status == TransactionStatus.AUTHORIZED and settled.capture_method == CaptureMethod.AUTOMATIC:
        applied.after_commit.append(continue_flow)


# --- refunds ---------------------------------------------------------------------------------
def _apply_refund(event: WebhookEvent, change: RefundChange, *, actor: Actor, applied: _Applied) -> None:
    refund = refund_find_for_gateway(gateway=event.gateway, reference=change.reference, idempotency_key=change.idempotency_key)
    if refund is None:
        applied.notes.append(f"refund {change.reference or '?'}: unknown to FlowPay")
        return
    applied.status = E.PROCESSED
    if change.status not in ("succeeded", "failed"):
        applied.notes.append(f"{refund.public_id}: {change.status} at the gateway, still {refund.status}")
        return
    before = refund.status
    refund, changed = refund_apply_gateway_result(
        refund_id=refund.pk, succeeded=change.status == "succeeded", reference=change.reference,
        failure_code=change.failure_code, actor=actor,
    )
    if changed:
        applied.notes.append(f"{refund.public_id}: {before} → {refund.status}")
    elif refund.status == "succeeded" and change.status == "failed":
        applied.notes.append(f"{refund.public_id}: succeeded in FlowPay but {change.status} at the gateway: reconcile manually")
    else:
        applied.notes.append(f"{refund.public_id}: already {refund.status}, nothing to change ({change.status} at the gateway)")


# --- disputes --------------------------------------------------------------------------------
def _apply_dispute(event: WebhookEvent, change: DisputeChange, *, actor: Actor, applied: _Applied) -> None:
    if not change.reference:
        applied.notes.append("dispute without an id")
        return
    existing = (
        Chargeback.objects.filter(gateway=event.gateway, chargeback_reference=change.reference)
        .select_related("transaction").first()
    )
    txn = existing.transaction if existing is not None else _transaction_for(
        event.gateway, change.payment_references, change.flowpay_reference
    )
    if txn is None:
        applied.notes.append(f"dispute {change.reference}: payment {'/'.join(change.payment_references) or '?'} unknown to FlowPay")
        return
    applied.status = E.PROCESSED
    if existing is None and txn.status not in CAPTURED_STATES:
        # A dispute on a payment FlowPay has not recorded as captured yet (its own event is
        # late): fail, the retry finds it captured.
        raise _OutOfOrder(f"dispute {change.reference} on {txn.public_id}, which is {txn.status}: waiting for its capture")
    chargeback, created = chargeback_create(
        transaction_id=txn.pk, chargeback_reference=change.reference, amount=change.amount,
        reason=change.reason, actor=actor, evidence_due_by=change.evidence_due_by,
        gateway=event.gateway, gateway_reference=change.reference, gateway_fee=change.fee,
    )
    if created:
        applied.notes.append(f"{chargeback.public_id} recorded for {txn.public_id}")
    before = chargeback.status
    if change.status == "other":
        applied.notes.append(f"{chargeback.public_id}: {change.gateway_status} at the gateway, left {chargeback.status} for review")
        logger.warning("gateway dispute in a state FlowPay does not map", extra={"chargeback": chargeback.public_id,
                                                                                 "gateway_status": change.gateway_status})
        return
    chargeback, changed = chargeback_apply_gateway_status(chargeback_id=chargeback.pk, status=change.status, actor=actor)
    if changed:
        applied.notes.append(f"{chargeback.public_id}: {before} → {chargeback.status}")
    elif not created:
        applied.notes.append(f"{chargeback.public_id}: already {chargeback.status}, nothing to change ({change.gateway_status} at the gateway)")


# --- 3. replay -------------------------------------------------------------------------------
REPLAYABLE = (E.FAILED, E.IGNORED)


def inbound_events_stalled(*, older_than: dt.timedelta):
    """Events not processed although they should have been: received long ago (their task
    was lost) or processing past the lease (their worker died)."""
    now = timezone.now()
    return InboundEvent.objects.filter(
        Q(status=E.RECEIVED, received_at__lt=now - older_than)
        | Q(status=E.PROCESSING, last_attempt_at__lt=now - inbound_event_lease())
    )


def inbound_events_requeue_stalled(*, older_than: dt.timedelta = dt.timedelta(minutes=10)) -> int:
    """Beat: queue again the events whose processing was lost (stalled, see above) and failed
    events whose automatic retry never ran. Safe to over-queue: only one worker claims an event."""

    retry_lost = Q(status=E.FAILED, attempts__lt=inbound_event_max_attempts(),
                   last_attempt_at__lt=timezone.now() - max(older_than, dt.timedelta(minutes=15)))
    stalled = inbound_events_stalled(older_than=older_than) | InboundEvent.objects.filter(retry_lost)
    count = 0
    for inbound_event_id in stalled.order_by("received_at").values_list("pk", flat=True)[:1000]:
        process_inbound_event_task.delay(inbound_event_id)
        count += 1
    if count:
        logger.warning("stalled inbound events queued again", extra={"count": count})
    return count


def inbound_event_replay(*, inbound_event_id: int, actor: Actor) -> InboundEvent:
    """Queue an event again: a failed or ignored one goes back to `received`, a stalled
    one is queued as it is. Audited. Raises InboxQueueError when the queue is unreachable
    (the event is then `received`, found again by --stalled)."""
    with transaction.atomic():
        row = InboundEvent.objects.select_for_update().get(pk=inbound_event_id)
        previous = row.status
        if previous in REPLAYABLE:
            row.status = E.RECEIVED
            row.save(update_fields=["status"])
        elif previous == E.PROCESSED or (
            previous == E.PROCESSING and row.last_attempt_at and row.last_attempt_at >= timezone.now() - inbound_event_lease()
        ):
            raise InvalidState(f"inbound event {row.pk} ({row.event_id}) is {previous}: nothing to replay")
        audit_record(
            actor=actor, action=AuditAction.INBOUND_EVENT_REPLAY, target=row,
            details={"gateway": row.gateway, "event": row.event_id, "type": row.type, "previous_status": previous,
                     "error": row.error[:500]},
        )
        _queue_on_commit(row.pk)
    return InboundEvent.objects.get(pk=inbound_event_id)
