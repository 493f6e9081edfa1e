"""Refund services: create, approve/reject (four-eyes), execute at the gateway, retry.

The invariant — succeeded + in-flight + awaiting-approval refunds never exceed the captured
amount — lives in the database: every refund reserves its amount on the transaction with one
conditional UPDATE (`amount_refund_reserved + amount + amount_disputed <= amount_captured`)
and CHECK constraints bound the reservation by the captured amount. A failed or rejected
refund gives its reservation back; a succeeded one moves its amount into amount_refunded.

Execution is request-then-confirm, like payment creation: the refund is marked processing
and committed, the gateway is called with no database transaction or row lock held, and the
outcome is recorded in a second short transaction. The gateway call carries an idempotency
key derived from the refund, so a crash in between, a redelivered task or a retry after a
timeout re-sends the same key and can never refund twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import random

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import can_proceed

from audit.actors import Actor, ActorType
from audit.services import audit_record
from flowpay import roles
from flowpay.errors import AmountTooLarge, InvalidRequest, InvalidState, NotFound, PermissionDenied
from flowpay.money import format_minor_units
from flowpay.observability.metrics import refund_processing_latency
from payments.gateways.base import (
    GatewayError,
    GatewayRequestError,
    GatewayTimeout,
    GatewayUnavailableError,
    OperationResult,
)
from payments.models import Transaction
from payments.models.transactions import CAPTURED_STATES
from refunds.models import OPEN_CHARGEBACK_STATES, Chargeback, Refund, RefundStatus
from refunds.services.events import refund_announce

logger = logging.getLogger(__name__)

R = RefundStatus
# Staff roles that may issue refunds; the approver roles may also approve others' refunds
# and are never limited by FLOWPAY_SUPPORT_REFUND_LIMIT.
REFUND_ROLES = frozenset({roles.SUPPORT, roles.FINANCE, roles.ADMIN})
APPROVER_ROLES = frozenset({roles.FINANCE, roles.ADMIN})
REASON_MAX_LENGTH = 500


# --- policy helpers ------------------------------------------------------------------
def _staff_roles(actor: Actor) -> set[str]:
    if actor.type != ActorType.STAFF or actor.user_id is None:
        return set()
    user = get_user_model().objects.filter(pk=actor.user_id).first()
    return roles.user_roles(user)


def support_refund_limit() -> int:
    return int(getattr(settings, "FLOWPAY_SUPPORT_REFUND_LIMIT", 10000))


def refund_needs_approval(*, actor: Actor, amount: int) -> bool:
    """Four-eyes rule: a staff refund above FLOWPAY_SUPPORT_REFUND_LIMIT (minor units of the
    transaction's currency) waits for a finance or admin approval unless the requester holds
    one of those roles. Merchants refunding their own payments are not limited."""
    if actor.type != ActorType.STAFF:
        return False
    return not (_staff_roles(actor) & APPROVER_ROLES) and amount > support_refund_limit()


def _check_may_refund(actor: Actor, txn: Transaction) -> None:
    if actor.type == ActorType.STAFF and not (_staff_roles(actor) & REFUND_ROLES):
        raise PermissionDenied("Refunds need the support, finance or admin role.")
    if actor.type == ActorType.API and actor.merchant_id != txn.merchant_id:
        raise NotFound(f"No such transaction: '{txn.public_id}'", param="id")


def _check_approver(actor: Actor, refund: Refund) -> None:
    if actor.type != ActorType.STAFF or not (_staff_roles(actor) & APPROVER_ROLES):
        raise PermissionDenied("Approving or rejecting a refund needs the finance or admin role.")
    if refund.requested_by_user_id is not None and refund.requested_by_user_id == actor.user_id:
        raise PermissionDenied("Four-eyes rule: a refund must be approved by someone other than its requester.")


def _validate_reason(reason: str, actor: Actor) -> str:
    if not isinstance(reason, str) or len(reason) > REASON_MAX_LENGTH or "\x00" in reason:
        raise InvalidRequest(f"The reason must be text of at most {REASON_MAX_LENGTH} characters.", param="reason")
    if actor.type == ActorType.STAFF and not reason.strip():
        raise InvalidRequest("A reason is required for refunds issued by staff.", code="parameter_missing", param="reason")
    return reason  # stored verbatim: never trimmed, never sanitised (it is escaped on output)


def _check_no_open_dispute(txn: Transaction) -> None:
    if Chargeback.objects.filter(transaction=txn, status__in=OPEN_CHARGEBACK_STATES).exists():
        raise InvalidState(
            f"Transaction {txn.public_id} has an open chargeback: it cannot be refunded until the dispute is closed "
            "(refunding now could return the money twice).",
            code="charge_disputed",
        )


def _too_large(txn: Transaction, amount: int) -> AmountTooLarge:
    remaining = txn.amount_refundable
    return AmountTooLarge(
        f"Refund amount {amount} exceeds the amount still refundable on {txn.public_id}: {remaining} "
        f"({format_minor_units(remaining, txn.currency)}).",
        param="amount",
    )


def _lock(refund_id: int) -> tuple[Transaction, Refund]:
    """Lock the transaction, then the refund: the same order everywhere, so two services
    never wait on each other in a cycle."""
    transaction_id = Refund.objects.filter(pk=refund_id).values_list("transaction_id", flat=True).first()
    if transaction_id is None:
        raise NotFound(f"No such refund: {refund_id}")
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    return txn, refund


# --- the reservation (the database-enforced invariant) ------------------------------------
def _reserve(*, transaction_id: int, amount: int) -> bool:
    """Add `amount` to the transaction's refund reservation if, and only if, succeeded +
    in-flight refunds + withdrawn chargeback funds stay within the captured amount. One
    conditional UPDATE: correct under any concurrency, whoever else writes the row."""
    return bool(
        Transaction.objects.filter(pk=transaction_id, status__in=CAPTURED_STATES)
        .filter(amount_refund_reserved__lte=F("amount_captured") - F("amount_disputed") - amount)
        .update(amount_refund_reserved=F("amount_refund_reserved") + amount, updated_at=timezone.now())
    )


def _release(*, transaction_id: int, amount: int) -> None:
    Transaction.objects.filter(pk=transaction_id).update(
        amount_refund_reserved=F("amount_refund_reserved") - amount, updated_at=timezone.now()
    )


def _queue_execution(refund: Refund) -> None:
    from refunds.tasks import refund_execute_task

    refund_id = refund.pk
    # robust: a broker hiccup must not turn a committed refund into a 500; the stalled-refund
    # sweeper (refunds.requeue_stalled) queues it again.
    transaction.on_commit(lambda: refund_execute_task.delay(refund_id), robust=True)


# --- create / approve / reject -------------------------------------------------------
def refund_create(
    *,
    transaction_id: int,
    amount: int | None,
    reason: str,
    actor: Actor,
    refund_to_original_method: bool = True,
    idempotency_record_id: int | None = None,
) -> Refund:
    """Refund (part of) a captured payment. `amount=None` refunds what remains. Returns the
    refund: `pending` (queued for the gateway), `requires_approval` (four-eyes), or
    `succeeded` for an off-gateway credit."""
    if idempotency_record_id is not None:
        # A request re-run under the same Idempotency-Key after a crash: never refund again.
        existing = Refund.objects.filter(idempotency_record_id=idempotency_record_id).first()
        if existing is not None:
            return existing
    return _refund_open(
        transaction_id=transaction_id, amount=amount, reason=reason, actor=actor,
        refund_to_original_method=refund_to_original_method, idempotency_record_id=idempotency_record_id,
    )


@transaction.atomic
def _refund_open(
    *, transaction_id: int, amount: int | None, reason: str, actor: Actor, refund_to_original_method: bool,
    idempotency_record_id: int | None,
) -> Refund:
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    _check_may_refund(actor, txn)
    reason = _validate_reason(reason, actor)
    if txn.status not in CAPTURED_STATES:
        raise InvalidState(
            f"Cannot refund a {txn.status} transaction: only completed or partially refunded payments can be refunded."
        )
    _check_no_open_dispute(txn)
    if amount is None:
        amount = txn.amount_refundable
        if amount <= 0:
            raise AmountTooLarge(f"Nothing is left to refund on {txn.public_id}: the refundable amount is 0.", param="amount")
    if amount <= 0:
        raise InvalidRequest("Amount must be at least 1.", code="amount_too_small", param="amount")
    if not _reserve(transaction_id=txn.pk, amount=amount):
        raise _too_large(txn, amount)

    needs_approval = refund_needs_approval(actor=actor, amount=amount)
    refund = Refund(
        transaction=txn, merchant_id=txn.merchant_id, amount=amount, currency=txn.currency, reason=reason,
        refund_to_original_method=refund_to_original_method,
        status=R.REQUIRES_APPROVAL if needs_approval else R.PENDING,
        approval_required=needs_approval,
        initiated_by_type=str(actor.type), initiated_by_id=actor.id[:150],
        requested_by_user_id=actor.user_id if actor.type == ActorType.STAFF else None,
        idempotency_record_id=idempotency_record_id,
    )
    refund.save()
    audit_record(
        actor=actor, action="refund.create", target=refund,
        details={
            "transaction": txn.public_id, "amount": amount, "currency": txn.currency, "reason": reason,
            "refund_to_original_method": refund_to_original_method, "approval_required": needs_approval,
            "limit": support_refund_limit() if needs_approval else None,
        },
    )
    if refund.status == R.PENDING:
        _dispatch(refund=refund, txn=txn, actor=actor)
    return refund


def _dispatch(*, refund: Refund, txn: Transaction, actor: Actor) -> None:
    """A refund ready to run: off-gateway credits are recorded at once; the others go to the
    gateway through the `refunds.execute` task once this transaction commits."""
    if refund.refund_to_original_method:
        _queue_execution(refund)
        return
    now = timezone.now()
    refund.start_processing(gateway="", now=now)
    refund.mark_succeeded(reference="", now=now)
    refund.save()
    _apply_to_transaction(txn=txn, refund=refund, actor=actor)
    audit_record(
        actor=actor, action="refund.succeeded", target=refund,
        details={"amount": refund.amount, "settlement": "off_gateway_credit", "note": "to be settled manually"},
    )
    refund_announce(refund)


def _apply_to_transaction(*, txn: Transaction, refund: Refund, actor: Actor) -> None:
    # The row is locked by the caller and amount_refund_reserved already covers this refund;
    # only amount_refunded and the status are written.
    txn.apply_refund(amount=refund.amount)
    txn.save(update_fields=["amount_refunded", "status", "updated_at"])
    audit_record(
        actor=actor, action=f"transaction.{txn.status}", target=txn,
        details={"refund": refund.public_id, "amount": refund.amount, "amount_refunded": txn.amount_refunded},
    )


@transaction.atomic
def refund_approve(*, refund_id: int, actor: Actor) -> Refund:
    """Four-eyes: a finance or admin user other than the requester releases the refund."""
    txn, refund = _lock(refund_id)
    _check_approver(actor, refund)
    if not can_proceed(refund.approve):
        raise InvalidState(f"Cannot approve a {refund.status} refund: only refunds awaiting approval can be approved.")
    _check_no_open_dispute(txn)
    refund.approve(user=get_user_model().objects.get(pk=actor.user_id), now=timezone.now())
    refund.save()
    audit_record(
        actor=actor, action="refund.approve", target=refund,
        details={"amount": refund.amount, "requested_by": refund.initiated_by_id},
    )
    _dispatch(refund=refund, txn=txn, actor=actor)
    return refund


@transaction.atomic
def refund_reject(*, refund_id: int, actor: Actor, reason: str = "") -> Refund:
    txn, refund = _lock(refund_id)
    _check_approver(actor, refund)
    if not can_proceed(refund.reject):
        raise InvalidState(f"Cannot reject a {refund.status} refund: only refunds awaiting approval can be rejected.")
    refund.reject(user=get_user_model().objects.get(pk=actor.user_id), reason=reason or "", now=timezone.now())
    refund.save()
    _release(transaction_id=txn.pk, amount=refund.amount)
    audit_record(actor=actor, action="refund.reject", target=refund, details={"amount": refund.amount, "reason": reason})
    return refund


# --- execution at the gateway -----------------------------------------------------------
def refund_retry_delay(attempt: int) -> float:
    """Seconds before the next automatic attempt: exponential backoff with jitter."""
    base = float(getattr(settings, "FLOWPAY_REFUND_RETRY_BASE_SECONDS", 5))
    cap = float(getattr(settings, "FLOWPAY_REFUND_RETRY_CAP_SECONDS", 600))
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def refund_execute(*, refund_id: int, actor: Actor, final_attempt: bool = True) -> Refund:
    """Send a pending or processing refund to its payment's gateway and record the outcome.

    Safe to run any number of times: a refund that already succeeded or failed is left
    alone, and every call for the same refund carries the same idempotency key. On an error
    that may be retried (gateway unavailable, timeout) the refund stays `processing` with
    `next_retry_at` set, unless `final_attempt`, in which case it is left `failed` with the
    reason. A refusal by the gateway fails it at once."""
    started = _refund_begin_attempt(refund_id=refund_id, actor=actor)
    if started is None:
        return Refund.objects.get(pk=refund_id)
    refund, gateway_name, charge_reference = started
    result: OperationResult | GatewayError
    try:
        result = _gateway_refund(gateway_name=gateway_name, reference=charge_reference, refund=refund)
    except GatewayError as exc:
        result = exc
    return _refund_record_outcome(refund_id=refund_id, result=result, actor=actor, final_attempt=final_attempt)


def _gateway_refund(*, gateway_name: str, reference: str, refund: Refund) -> OperationResult:
    # Imported here: the router is part of the gateway layer and pulls in its metrics.
    from payments.gateways.breaker import breaker_for
    from payments.gateways.registry import gateway_named
    from payments.gateways.router import observed_call

    try:
        gateway = gateway_named(gateway_name)
    except LookupError:  # a gateway removed from this deployment: nothing can happen there
        raise GatewayUnavailableError(f"the gateway {gateway_name!r} is not available in this deployment") from None
    if not breaker_for(gateway_name).allow_request():
        raise GatewayUnavailableError(f"the {gateway_name} circuit breaker is open")
    return observed_call(
        gateway=gateway_name, operation="refund",
        call=lambda: gateway.refund(reference=reference, amount=refund.amount, idempotency_key=refund.idempotency_key),
    )


@transaction.atomic
def _refund_begin_attempt(*, refund_id: int, actor: Actor) -> tuple[Refund, str, str] | None:
    txn, refund = _lock(refund_id)
    now = timezone.now()
    if refund.status == R.PENDING:
        refund.start_processing(gateway=txn.gateway, now=now)
        audit_record(actor=actor, action="refund.processing", target=refund, details={"gateway": txn.gateway})
    elif refund.status != R.PROCESSING:
        return None  # already finished (a redelivered or duplicate task), or awaiting approval
    if not refund.refund_to_original_method:  # never queued, but never sent to a gateway either
        refund.save()
        return None
    refund.attempts += 1
    refund.last_attempt_at = now
    refund.save()
    return refund, refund.gateway or txn.gateway, txn.gateway_reference


@transaction.atomic
def _refund_record_outcome(*, refund_id: int, result: OperationResult | GatewayError, actor: Actor, final_attempt: bool) -> Refund:
    txn, refund = _lock(refund_id)
    if refund.status != R.PROCESSING:
        return refund  # another run recorded it meanwhile
    now = timezone.now()
    details = {"gateway": refund.gateway, "attempt": refund.attempts, "idempotency_key": refund.idempotency_key}

    if isinstance(result, OperationResult) and result.succeeded:
        refund.mark_succeeded(reference=result.reference or refund.idempotency_key, now=now)
        refund.save()
        audit_record(actor=actor, action="refund.succeeded", target=refund, details={**details, "reference": refund.gateway_reference})
        _apply_to_transaction(txn=txn, refund=refund, actor=actor)
        refund_announce(refund)
        _observe_latency(refund, now)
        return refund

    if isinstance(result, (OperationResult, GatewayRequestError)):
        # The gateway answered for this key and refunded nothing: final.
        code = (result.error_code or "refund_refused") if isinstance(result, OperationResult) else result.code
        message = result.message if isinstance(result, OperationResult) else str(result)
        refund.outcome_unknown = False
        return _fail(refund=refund, txn=txn, code=code, message=message or "The gateway refused the refund.", actor=actor,
                     details=details, now=now)

    # Unavailable (nothing happened) or timeout (unknown outcome): retry with the same key.
    unknown = not isinstance(result, GatewayUnavailableError)
    if isinstance(result, GatewayTimeout):
        logger.warning("gateway timeout on refund; outcome unknown, will retry with the same key",
                       extra={"refund": refund.public_id, "transaction": txn.public_id, "gateway": refund.gateway})
    if final_attempt:
        refund.outcome_unknown = refund.outcome_unknown or unknown
        return _fail(refund=refund, txn=txn, code=result.code, message=str(result), actor=actor, details=details, now=now)
    next_retry_at = now + dt.timedelta(seconds=refund_retry_delay(refund.attempts))
    refund.record_attempt_error(code=result.code, message=str(result), unknown_outcome=unknown, next_retry_at=next_retry_at)
    refund.save()
    audit_record(
        actor=actor, action="refund.attempt_failed", target=refund, result="failure",
        details={**details, "error": result.code, "outcome_unknown": unknown, "next_retry_at": next_retry_at.isoformat()},
    )
    return refund


def _fail(*, refund: Refund, txn: Transaction, code: str, message: str, actor: Actor, details: dict, now) -> Refund:
    refund.mark_failed(code=code, message=message, now=now)
    refund.save()
    if not refund.holds_reservation:
        _release(transaction_id=txn.pk, amount=refund.amount)
    audit_record(
        actor=actor, action="refund.failed", target=refund, result="failure",
        details={**details, "error": code, "message": message[:500], "outcome_unknown": refund.outcome_unknown,
                 "reservation_released": not refund.holds_reservation},
    )
    logger.warning("refund failed", extra={"refund": refund.public_id, "transaction": txn.public_id, "error": code})
    refund_announce(refund)
    _observe_latency(refund, now)
    return refund


def _observe_latency(refund: Refund, now) -> None:
    if refund.processing_started_at is not None:
        refund_processing_latency.labels(gateway=refund.gateway or "none", outcome=refund.status).observe(
            max(0.0, (now - refund.processing_started_at).total_seconds())
        )


# --- recovery -----------------------------------------------------------------------
@transaction.atomic
def refund_retry(*, refund_id: int, actor: Actor) -> Refund:
    """Send a failed refund again (failed → processing) and queue it. After a failure known
    to have refunded nothing the retry uses a fresh gateway idempotency key and must reserve
    its amount again (400 amount_too_large if other refunds took it meanwhile); after an
    unknown outcome it keeps its reservation and re-sends the same key."""
    txn, refund = _lock(refund_id)
    _check_may_refund(actor, txn)
    if not can_proceed(refund.retry):
        raise InvalidState(f"Cannot retry a {refund.status} refund: only failed refunds can be retried.")
    _check_no_open_dispute(txn)
    new_key = not refund.outcome_unknown
    if not refund.holds_reservation and not _reserve(transaction_id=txn.pk, amount=refund.amount):
        raise _too_large(Transaction.objects.get(pk=txn.pk), refund.amount)
    previous = {"error": refund.failure_code, "attempts": refund.attempts}
    refund.retry(new_key=new_key, now=timezone.now())
    refund.save()
    audit_record(
        actor=actor, action="refund.retry", target=refund,
        details={**previous, "idempotency_key": refund.idempotency_key, "new_key": new_key},
    )
    _queue_execution(refund)
    return refund


def refunds_requeue_stalled(*, older_than: dt.timedelta = dt.timedelta(minutes=10)) -> int:
    """Queue again refunds that should be running but are not: pending ones whose task was
    lost (broker outage at commit time) and processing ones whose retry is long overdue
    (worker killed). Re-running is safe: same idempotency key."""
    cutoff = timezone.now() - older_than
    stalled = Refund.objects.filter(
        Q(status=R.PENDING, updated_at__lt=cutoff, refund_to_original_method=True)
        | Q(status=R.PROCESSING, next_retry_at__lt=cutoff)
        | Q(status=R.PROCESSING, next_retry_at__isnull=True, updated_at__lt=cutoff)
    ).values_list("pk", flat=True)
    from refunds.tasks import refund_execute_task

    count = 0
    for refund_id in stalled:
        refund_execute_task.delay(refund_id)
        count += 1
    return count


# --- gateway events (inbound webhooks) ---------------------------------------------------
def refund_find_for_gateway(*, gateway: str, reference: str | None, idempotency_key: str | None) -> Refund | None:
    """The refund a gateway event is about: by the gateway's refund id, else by the
    idempotency key FlowPay sent with it (a refund whose gateway answer was lost has no
    reference yet). A key of an earlier round (before a retry under a fresh key) matches
    nothing: that round is known to have refunded nothing."""
    refunds = Refund.objects.filter(transaction__gateway=gateway)
    if reference:
        found = refunds.filter(gateway_reference=reference).first()
        if found is not None:
            return found
    parts = (idempotency_key or "").split(":")
    if len(parts) in (3, 4) and parts[0] == "flowpay" and parts[2] == "refund":
        found = refunds.filter(public_id=parts[1]).first()
        if found is not None and found.idempotency_key == idempotency_key:
            return found
    return None


@transaction.atomic
def refund_apply_gateway_result(
    *, refund_id: int, succeeded: bool, reference: str | None, failure_code: str | None, actor: Actor
) -> tuple[Refund, bool]:
    """Record a refund's final outcome as its gateway reports it (an inbound webhook).
    Returns (refund, changed).

    - processing → succeeded | failed, exactly as if the gateway call had answered (its
      answer was lost, or the gateway settled the refund asynchronously);
    - failed after an unknown outcome (its last call timed out, so it kept its reservation)
      → succeeded when the gateway says it did refund, audited as `refund.recovered`;
    - anything else is left alone (changed is False): a final refund is never moved back by
      an older event. A refund recorded succeeded that the gateway now reports failed is
      logged for manual reconciliation (the state machine has no way back)."""
    txn, refund = _lock(refund_id)
    if refund.status == R.FAILED and succeeded and refund.outcome_unknown and refund.holds_reservation:
        previous = {"error": refund.failure_code, "attempts": refund.attempts}
        refund.retry(new_key=False, now=timezone.now())
        refund.save()
        audit_record(actor=actor, action="refund.recovered", target=refund, details={**previous, "reference": reference})
    if refund.status != R.PROCESSING:
        if refund.status == R.SUCCEEDED and not succeeded:
            logger.warning(
                "gateway reports a succeeded refund failed: manual reconciliation needed",
                extra={"refund": refund.public_id, "transaction": txn.public_id, "gateway": refund.gateway,
                       "error": failure_code},
            )
        return refund, False
    if succeeded:
        result = OperationResult(succeeded=True, reference=reference, amount=refund.amount)
    else:
        code = failure_code or "refund_failed"
        result = OperationResult(succeeded=False, reference=reference, amount=refund.amount, error_code=code,
                                 message=f"The gateway reported the refund failed ({code}).")
    return _refund_record_outcome(refund_id=refund.pk, result=result, actor=actor, final_attempt=True), True
