"""Recovering refunds that failed or whose outcome is unknown: a retry asked for by a person
(refund_retry), and the gateway's own report of a refund's outcome (an inbound webhook),
which can settle a refund whose answer was lost or recover one already failed.

Money that left is never ignored: a success is recorded whoever reports it, taking the
reservation again if it was released (with an over-refund alert if other refunds took the
amount meanwhile). A final refund is never moved back by an older event.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import InvalidState
from core.permissions import Capability
from gateways.base import OperationResult
from payments.models import Transaction
from refunds.models import Refund, RefundStatus
from refunds.services.execution import refund_queue_execution
from refunds.services.outcome import refund_record_outcome
from refunds.services.policy import check_may_refund, check_no_open_dispute, check_retry_within_limits
from refunds.services.reservation import amount_too_large, lock_refund, release_amount, reserve_amount

logger = logging.getLogger(__name__)

R = RefundStatus


@transaction.atomic
def refund_retry(*, refund_id: int, actor: Actor) -> Refund:
    """Send a failed refund again (failed → processing) and queue it. After a failure known
    to have refunded nothing the retry uses a fresh gateway idempotency key and must reserve
    its amount again (400 amount_too_large if other refunds took it meanwhile); after an
    unknown outcome it keeps its reservation and re-sends the same key."""
    txn, refund = lock_refund(refund_id)
    check_may_refund(actor, txn, Capability.REFUND_RETRY)
    if not can_proceed(refund.retry):
        raise InvalidState(f"Cannot retry a {refund.status} refund: only failed refunds can be retried.")
    check_no_open_dispute(txn)
    check_retry_within_limits(actor, txn, refund)
    new_key = not refund.outcome_unknown
    if not refund.holds_reservation and not reserve_amount(transaction_id=txn.pk, amount=refund.amount):
        raise amount_too_large(Transaction.objects.get(pk=txn.pk), refund.amount)
    previous = {"error": refund.failure_code, "attempts": refund.attempts}
    refund.retry(new_key=new_key, now=timezone.now())
    refund.save()
    audit_record(
        actor=actor, action=AuditAction.REFUND_RETRY, target=refund,
        details={**previous, "idempotency_key": refund.idempotency_key, "new_key": new_key},
    )
    refund_queue_execution(refund)
    return refund


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
    - failed → succeeded when the gateway says it did refund, audited as `refund.recovered`
      (money that left is never ignored): after an unknown outcome it still holds its
      reservation; after a known one it takes it again, or, if other refunds took the
      amount meanwhile, is recorded anyway with an over-refund alert;
    - failed after an unknown outcome, reported failed: the outcome is now known, the
      reservation is released (audited `refund.outcome_resolved`);
    - anything else is left alone (changed is False): a final refund is never moved back by
      an older event. A refund recorded succeeded that the gateway now reports failed is
      logged for manual reconciliation (the state machine has no way back)."""
    txn, refund = lock_refund(refund_id)
    if succeeded:
        if refund.status not in (R.PROCESSING, R.FAILED):
            return refund, False
        result = OperationResult(succeeded=True, reference=reference, amount=refund.amount)
        return refund_record_outcome(refund_id=refund.pk, result=result, actor=actor, final_attempt=True,
                                     authoritative=True), True
    code = failure_code or "refund_failed"
    message = f"The gateway reported the refund failed ({code})."
    if refund.status == R.PROCESSING:
        result = OperationResult(succeeded=False, reference=reference, amount=refund.amount, error_code=code, message=message)
        return refund_record_outcome(refund_id=refund.pk, result=result, actor=actor, final_attempt=True,
                                     authoritative=True), True
    if refund.status == R.FAILED and refund.outcome_unknown:
        _resolve_unknown_as_failed(txn=txn, refund=refund, code=code, message=message, reference=reference, actor=actor)
        return refund, True
    if refund.status == R.SUCCEEDED:
        logger.warning(
            "gateway reports a succeeded refund failed: manual reconciliation needed",
            extra={"refund": refund.public_id, "transaction": txn.public_id, "gateway": refund.gateway,
                   "error": failure_code},
        )
    return refund, False


def _resolve_unknown_as_failed(
    *, txn: Transaction, refund: Refund, code: str, message: str, reference: str | None, actor: Actor,
) -> None:
    # The gateway's word on the call that timed out: nothing was refunded.
    refund.outcome_unknown = False
    refund.holds_reservation = False
    previous = {"error": refund.failure_code, "attempts": refund.attempts}
    refund.failure_code = code[:64]
    refund.failure_message = message[:500]
    refund.save()
    release_amount(transaction_id=txn.pk, amount=refund.amount)
    audit_record(actor=actor, action=AuditAction.REFUND_OUTCOME_RESOLVED, target=refund,
                 details={**previous, "gateway_error": code, "reference": reference, "reservation_released": True,
                          "idempotency_key": refund.idempotency_key})
