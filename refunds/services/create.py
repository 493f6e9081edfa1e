"""Opening a refund and the four-eyes decision on it: create, approve, reject.

Creating reserves the amount (refunds.services.reservation) in the same transaction as the
refund row, so succeeded + in-flight + awaiting-approval refunds never exceed the captured
amount. A refund ready to run is queued for the gateway once that transaction commits; an
off-gateway credit is recorded succeeded at once. A rejected refund gives its reservation back.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.errors import AmountTooLarge, ErrorCode, InvalidRequest, InvalidState
from core.permissions import Capability
from payments.models import Transaction
from payments.models.transactions import CAPTURED_STATES
from refunds.models import Refund, RefundStatus
from refunds.services.events import refund_announce
from refunds.services.execution import refund_queue_execution
from refunds.services.policy import (
    check_approver,
    check_may_refund,
    check_no_open_dispute,
    refund_needs_approval,
    validate_reason,
)
from refunds.services.reservation import (
    amount_too_large,
    apply_to_transaction,
    lock_refund,
    release_amount,
    reserve_amount,
)

R = RefundStatus


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
    check_may_refund(actor, txn, Capability.REFUND_CREATE)
    reason = validate_reason(reason, actor)
    if txn.status not in CAPTURED_STATES:
        raise InvalidState(
            f"Cannot refund a {txn.status} transaction: only completed or partially refunded payments can be refunded."
        )
    check_no_open_dispute(txn)
    if amount is None:
        amount = txn.amount_refundable
        if amount <= 0:
            raise AmountTooLarge(f"Nothing is left to refund on {txn.public_id}: the refundable amount is 0.", param="amount")
    if amount <= 0:
        raise InvalidRequest("Amount must be at least 1.", code=ErrorCode.AMOUNT_TOO_SMALL, param="amount")
    if not reserve_amount(transaction_id=txn.pk, amount=amount):
        raise amount_too_large(txn, amount)

    approval = refund_needs_approval(actor=actor, txn=txn, amount=amount)
    needs_approval = approval.needed
    refund = Refund(
        transaction=txn, merchant_id=txn.merchant_id, livemode=txn.livemode, amount=amount, currency=txn.currency, reason=reason,
        refund_to_original_method=refund_to_original_method,
        status=R.REQUIRES_APPROVAL if needs_approval else R.PENDING,
        approval_required=needs_approval,
        initiated_by_type=str(actor.type), initiated_by_id=actor.id[:150],
        requested_by_user_id=actor.user_id if actor.type == ActorType.STAFF else None,
        idempotency_record_id=idempotency_record_id,
    )
    refund.save()
    audit_record(
        actor=actor, action=AuditAction.REFUND_CREATE, target=refund,
        details={
            "transaction": txn.public_id, "amount": amount, "currency": txn.currency, "reason": reason,
            "refund_to_original_method": refund_to_original_method, "approval_required": needs_approval,
            **approval.audit_details(),
        },
    )
    if refund.status == R.PENDING:
        _dispatch(refund=refund, txn=txn, actor=actor)
    return refund


def _dispatch(*, refund: Refund, txn: Transaction, actor: Actor) -> None:
    """A refund ready to run: off-gateway credits are recorded at once; the others go to the
    gateway through the `refunds.execute` task once this transaction commits."""
    if refund.refund_to_original_method:
        refund_queue_execution(refund)
        return
    now = timezone.now()
    refund.start_processing(gateway="", now=now)
    refund.mark_succeeded(reference="", now=now)
    refund.save()
    apply_to_transaction(txn=txn, refund=refund, actor=actor)
    audit_record(
        actor=actor, action=AuditAction.REFUND_SUCCEEDED, target=refund,
        details={"amount": refund.amount, "settlement": "off_gateway_credit", "note": "to be settled manually"},
    )
    refund_announce(refund)


@transaction.atomic
def refund_approve(*, refund_id: int, actor: Actor) -> Refund:
    """Four-eyes: a finance or admin user other than the requester releases the refund."""
    txn, refund = lock_refund(refund_id)
    check_approver(actor, refund)
    if not can_proceed(refund.approve):
        raise InvalidState(f"Cannot approve a {refund.status} refund: only refunds awaiting approval can be approved.")
    check_no_open_dispute(txn)
    refund.approve(user=get_user_model().objects.get(pk=actor.user_id), now=timezone.now())
    refund.save()
    audit_record(
        actor=actor, action=AuditAction.REFUND_APPROVE, target=refund,
        details={"amount": refund.amount, "requested_by": refund.initiated_by_id},
    )
    _dispatch(refund=refund, txn=txn, actor=actor)
    return refund


@transaction.atomic
def refund_reject(*, refund_id: int, actor: Actor, reason: str = "") -> Refund:
    txn, refund = lock_refund(refund_id)
    check_approver(actor, refund)
    if not can_proceed(refund.reject):
        raise InvalidState(f"Cannot reject a {refund.status} refund: only refunds awaiting approval can be rejected.")
    refund.reject(user=get_user_model().objects.get(pk=actor.user_id), reason=reason or "", now=timezone.now())
    refund.save()
    release_amount(transaction_id=txn.pk, amount=refund.amount)
    audit_record(actor=actor, action=AuditAction.REFUND_REJECT, target=refund, details={"amount": refund.amount, "reason": reason})
    return refund
