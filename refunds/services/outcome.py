"""Recording what the gateway answered for a refund attempt.

A success is recorded whoever reports it (the money left), recovering a refund already
failed. Errors and refusals are recorded only by the holder of the attempt's claim or on
the gateway's own word about this refund (a webhook, a lookup). Errors that may be retried
(gateway unavailable, timeout) keep the refund `processing` with `next_retry_at` and the
same idempotency key; a refusal fails it and gives its reservation back, unless an earlier
call's outcome is unknown (then it may have refunded and the reservation is kept).
"""

from __future__ import annotations

import datetime as dt
import logging
import random

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.observability.metrics import refund_processing_latency
from gateways.base import (
    GatewayError,
    GatewayRequestError,
    GatewayTimeout,
    GatewayUnavailableError,
    OperationResult,
)
from payments.models import Transaction
from refunds.models import Refund, RefundStatus
from refunds.services.events import refund_announce
from refunds.services.reservation import apply_to_transaction, lock_refund, release_amount, reserve_amount

logger = logging.getLogger(__name__)

R = RefundStatus
# Refusals that, after a call whose outcome was unknown, say the money already went out.
ALREADY_REFUNDED_CODES = frozenset({"charge_already_refunded"})
# Refusals that say nothing about whether this key refunded (a concurrent same-key request).
UNKNOWN_OUTCOME_CODES = frozenset({"idempotency_error"})


def refund_retry_delay(attempt: int) -> float:
    """Seconds before the next automatic attempt: exponential backoff with jitter."""
    base = settings.FLOWPAY_REFUND_RETRY_BASE_SECONDS
    cap = settings.FLOWPAY_REFUND_RETRY_CAP_SECONDS
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


@transaction.atomic
def refund_record_outcome(
    *, refund_id: int, result: OperationResult | GatewayError, actor: Actor, final_attempt: bool,
    token: str | None = None, idempotency_key: str | None = None, authoritative: bool = False,
) -> Refund:
    """Record what the gateway answered. A success is always recorded, whoever reports it
    (the money left). Anything else only from the holder of the current claim (`token`) or
    from the gateway's own word about this refund (`authoritative`: a webhook, a lookup)."""
    txn, refund = lock_refund(refund_id)
    now = timezone.now()
    key = idempotency_key or refund.idempotency_key
    details = {"gateway": refund.gateway, "attempt": refund.attempts, "idempotency_key": key}

    if isinstance(result, OperationResult) and result.succeeded:
        return record_success(txn=txn, refund=refund, reference=result.reference, key=key, actor=actor,
                              details=details, now=now)

    holder = token is not None and refund.attempt_token == token
    if refund.status != R.PROCESSING or not (holder or authoritative):
        logger.info("refund outcome not recorded: the attempt no longer holds the claim",
                    extra={"refund": refund.public_id, "status": refund.status,
                           "error": getattr(result, "code", None) or getattr(result, "error_code", None)})
        return refund  # another run recorded it meanwhile, or owns the refund now

    if isinstance(result, (OperationResult, GatewayRequestError)):
        code = (result.error_code or "refund_refused") if isinstance(result, OperationResult) else result.code
        message = (result.message if isinstance(result, OperationResult) else str(result)) or "The gateway refused the refund."
        if authoritative:
            # The gateway's word about this very refund: it refunded nothing.
            refund.outcome_unknown = False
            return record_failure(refund=refund, txn=txn, code=code, message=message, actor=actor, details=details, now=now)
        if refund.outcome_unknown and code in ALREADY_REFUNDED_CODES:
            # After a call whose outcome was unknown: the money went out (that call refunded).
            audit_record(actor=actor, action=AuditAction.REFUND_RECOVERED, target=refund,
                         details={**details, "inferred_from": code, "note": "confirm at the gateway in reconciliation"})
            return record_success(txn=txn, refund=refund, reference=None, key=key, actor=actor, details=details, now=now)
        if code not in UNKNOWN_OUTCOME_CODES:
            if refund.outcome_unknown:
                # A refusal following a timeout does not say the earlier call refunded nothing.
                message = f"{message} (after an earlier call with an unknown outcome: reconcile manually)"
            return record_failure(refund=refund, txn=txn, code=code, message=message, actor=actor, details=details, now=now)
        result = GatewayTimeout(message, code=code)
    return _record_retryable_error(txn=txn, refund=refund, error=result, final_attempt=final_attempt, actor=actor,
                                   details=details, now=now)


def _record_retryable_error(
    *, txn: Transaction, refund: Refund, error: GatewayError, final_attempt: bool, actor: Actor, details: dict, now,
) -> Refund:
    """Unavailable (nothing happened) or timeout (unknown outcome): retry with the same key,
    or fail on the last attempt."""
    unknown = not isinstance(error, GatewayUnavailableError)
    if isinstance(error, GatewayTimeout):
        logger.warning("gateway timeout on refund; outcome unknown, will retry with the same key",
                       extra={"refund": refund.public_id, "transaction": txn.public_id, "gateway": refund.gateway})
    if final_attempt:
        refund.outcome_unknown = refund.outcome_unknown or unknown
        return record_failure(refund=refund, txn=txn, code=error.code, message=str(error), actor=actor, details=details, now=now)
    next_retry_at = now + dt.timedelta(seconds=refund_retry_delay(refund.attempts))
    refund.record_attempt_error(code=error.code, message=str(error), unknown_outcome=unknown, next_retry_at=next_retry_at)
    refund.save()
    audit_record(
        actor=actor, action=AuditAction.REFUND_ATTEMPT_FAILED, target=refund, result="failure",
        details={**details, "error": error.code, "outcome_unknown": unknown, "next_retry_at": next_retry_at.isoformat()},
    )
    return refund


def record_success(
    *, txn: Transaction, refund: Refund, reference: str | None, key: str, actor: Actor, details: dict, now,
) -> Refund:
    """The gateway refunded under `key`: record it, whatever state the refund is in. A refund
    already failed is recovered (its reservation taken again; if the amount went to other
    refunds meanwhile, it is recorded all the same and an over-refund alert is raised)."""
    if refund.status == R.SUCCEEDED:
        # The same key always answers with the same gateway refund; the stored reference is
        # the key itself only when the gateway's id was not known (charge_already_refunded).
        if reference and reference != refund.gateway_reference and refund.gateway_reference != key:
            _over_refund_alert(txn=txn, refund=refund, actor=actor, details={**details, "reference": reference},
                               why="a second refund was made at the gateway for this refund")
        return refund
    if refund.status not in (R.PROCESSING, R.FAILED):
        logger.error("gateway reports a refund succeeded that FlowPay never sent: reconcile manually",
                     extra={"refund": refund.public_id, "status": refund.status, "reference": reference})
        return refund
    reserved = True
    if refund.status == R.FAILED:
        previous = {"error": refund.failure_code, "attempts": refund.attempts, "outcome_unknown": refund.outcome_unknown}
        if not refund.holds_reservation:
            reserved = reserve_amount(transaction_id=txn.pk, amount=refund.amount)
        refund.retry(new_key=False, now=now)
        audit_record(actor=actor, action=AuditAction.REFUND_RECOVERED, target=refund,
                     details={**details, **previous, "reference": reference, "re_reserved": reserved})
    refund.mark_succeeded(reference=reference or key, now=now)
    refund.save()
    audit_record(actor=actor, action=AuditAction.REFUND_SUCCEEDED, target=refund, details={**details, "reference": refund.gateway_reference})
    if reserved:
        apply_to_transaction(txn=txn, refund=refund, actor=actor)
    else:
        _over_refund_alert(txn=txn, refund=refund, actor=actor, details=details,
                           why="its amount was released and taken by other refunds before the gateway's success arrived")
    refund_announce(refund)
    _observe_latency(refund, now)
    return refund


def _over_refund_alert(*, txn: Transaction, refund: Refund, actor: Actor, details: dict, why: str) -> None:
    logger.error("over-refund: the gateway refunded more than FlowPay can record; reconcile manually",
                 extra={"refund": refund.public_id, "transaction": txn.public_id, "amount": refund.amount, "why": why})
    audit_record(actor=actor, action=AuditAction.REFUND_OVER_REFUND_ALERT, target=refund, result="failure",
                 details={**details, "amount": refund.amount, "transaction": txn.public_id, "why": why})


def record_failure(*, refund: Refund, txn: Transaction, code: str, message: str, actor: Actor, details: dict, now) -> Refund:
    """Fail the refund (the caller holds the locks), giving its reservation back unless it
    must keep it (an earlier call's outcome is unknown)."""
    refund.mark_failed(code=code, message=message, now=now)
    refund.save()
    if not refund.holds_reservation:
        release_amount(transaction_id=txn.pk, amount=refund.amount)
    audit_record(
        actor=actor, action=AuditAction.REFUND_FAILED, target=refund, result="failure",
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
