"""Deciding a review: approve captures the held payment, reject cancels it (or refunds it
when it was captured meanwhile). Both are audited with the reviewer.

Why here: the decisions move money through payments (capture, cancel) and refunds
(refund), which sit above fraud.screening in the layers; this package sits above refunds
(.importlinter, docs/architecture.md#fraud-screening).

Rules:
- Claim, act, record. The claim is a short transaction under the review's row lock: only
  an open review (or one whose claim expired: its reviewer's process died) can be claimed,
  so of two reviewers deciding at once one claims it and the other gets 409. The money
  moves outside the claim's transaction (the capture, cancel and refund services lock the
  payment and call the gateway themselves, and record their attempts whatever happens);
  then the review is closed in a second short transaction.
- A capture, cancel or refund that does not happen releases the claim (the review is open
  again, the failure audited) and its error is the answer.
- Exactly once: the capture service refuses a second capture of a payment (its row lock
  and state), so an approve retried, taken over or racing the merchant's own capture finds
  the payment captured and records `already_captured` instead of capturing again.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import InvalidState
from fraud.models import CLAIMED_STATES, CLOSED_STATES, Review
from fraud.screening.reviews import review_announce
from payments.models import Transaction, TransactionStatus
from payments.models.transactions import CAPTURED_STATES
from payments.services.transactions import transaction_cancel, transaction_capture
from refunds.models import RefundStatus
from refunds.services.create import refund_create
from webhooks.events import EventType

S = TransactionStatus
NOTE_MAX_LENGTH = 500
CANCELABLE = (S.AUTHORIZED, S.REQUIRES_ACTION)
ALREADY_CLOSED = (S.CANCELED, S.FAILED, S.REFUNDED)


def review_approve(*, review_id: int, actor: Actor, note: str = "") -> Review:
    """Capture the held payment (or find it captured) and close the review approved."""
    _review_claim(review_id=review_id, approve=True, actor=actor)
    try:
        result = _approve_payment(review_id=review_id, actor=actor)
    except Exception as exc:
        _review_release(review_id=review_id, actor=actor, approve=True, error=exc)
        raise
    return _review_close(review_id=review_id, approve=True, actor=actor, note=note, result=result)


def review_reject(*, review_id: int, actor: Actor, note: str = "") -> Review:
    """Cancel the held payment (refund it when it was captured) and close the review rejected."""
    _review_claim(review_id=review_id, approve=False, actor=actor)
    try:
        result, refund_id = _reject_payment(review_id=review_id, actor=actor, note=note)
    except Exception as exc:
        _review_release(review_id=review_id, actor=actor, approve=False, error=exc)
        raise
    return _review_close(review_id=review_id, approve=False, actor=actor, note=note, result=result, refund_id=refund_id)


def _payment_of(review_id: int) -> Transaction:
    return Transaction.objects.get(pk=Review.objects.filter(pk=review_id).values_list("transaction_id", flat=True).get())


def _approve_payment(*, review_id: int, actor: Actor) -> str:
    txn = _payment_of(review_id)
    if txn.status in CAPTURED_STATES:
        return "already_captured"
    if txn.status != S.AUTHORIZED:
        raise InvalidState(f"Transaction {txn.public_id} is {txn.status}: only an authorized payment can be approved "
                           "(a payment awaiting 3-D Secure or an unknown gateway answer can be approved once authorized).")
    try:
        transaction_capture(transaction_id=txn.pk, amount=None, actor=actor)
    except InvalidState:
        if Transaction.objects.filter(pk=txn.pk, status__in=CAPTURED_STATES).exists():
            return "already_captured"  # captured meanwhile (the merchant's own capture): never twice
        raise
    return "captured"


def _reject_payment(*, review_id: int, actor: Actor, note: str) -> tuple[str, str]:
    txn = _payment_of(review_id)
    if txn.status in CANCELABLE:
        transaction_cancel(transaction_id=txn.pk, actor=actor)
        return "canceled", ""
    if txn.status in (S.COMPLETED, S.PARTIALLY_REFUNDED) and txn.amount_refundable > 0:
        reason = f"Rejected in fraud review: {note}" if note else "Rejected in fraud review."
        refund = refund_create(transaction_id=txn.pk, amount=None, reason=reason[:NOTE_MAX_LENGTH], actor=actor)
        result = "refund_requested" if refund.status == RefundStatus.REQUIRES_APPROVAL else "refunded"
        return result, refund.public_id
    if txn.status in ALREADY_CLOSED or txn.status in CAPTURED_STATES:
        return "already_closed", ""
    raise InvalidState(f"Transaction {txn.public_id} is {txn.status}: its gateway answer is not known yet; reject it "
                       "once it is settled.")


@transaction.atomic
def _review_claim(*, review_id: int, approve: bool, actor: Actor) -> Review:
    review = Review.objects.select_for_update().get(pk=review_id)
    now = timezone.now()
    if review.status in CLOSED_STATES:
        raise InvalidState(f"Review {review.public_id} is already {review.status} (by {review.closed_by}).")
    if review.status in CLAIMED_STATES and review.claim_expires_at > now:
        raise InvalidState(f"Review {review.public_id} is being decided ({review.status}, by {review.claimed_by}): "
                           "one reviewer decides it.")
    until = now + dt.timedelta(seconds=settings.FLOWPAY_FRAUD_REVIEW_CLAIM_SECONDS)
    claim = review.claim_approve if approve else review.claim_reject
    claim(by=actor.id[:150], until=until)
    review.save()
    return review


@transaction.atomic
def _review_release(*, review_id: int, actor: Actor, approve: bool, error: Exception) -> None:
    review = Review.objects.select_for_update().get(pk=review_id)
    if review.status in CLAIMED_STATES and review.claimed_by == actor.id[:150]:
        review.release()
        review.save()
    code = getattr(error, "code", type(error).__name__)
    audit_record(actor=actor, action=AuditAction.FRAUD_REVIEW_FAILED, target=review, merchant_id=review.merchant_id,
                 result="failure", details={"decision": "approve" if approve else "reject", "error": str(code),
                                            "message": getattr(error, "message", str(error))[:300]})


@transaction.atomic
def _review_close(*, review_id: int, approve: bool, actor: Actor, note: str, result: str, refund_id: str = "") -> Review:
    review = Review.objects.select_for_update().get(pk=review_id)
    now = timezone.now()
    if approve:
        review.mark_approved(by_type=str(actor.type), by=actor.id[:150], note=note, result=result, now=now)
    else:
        review.mark_rejected(by_type=str(actor.type), by=actor.id[:150], note=note, result=result, now=now,
                             refund_public_id=refund_id)
    review.save()
    audit_record(
        actor=actor, action=AuditAction.FRAUD_REVIEW_APPROVE if approve else AuditAction.FRAUD_REVIEW_REJECT,
        target=review, merchant_id=review.merchant_id,
        details={"transaction": review.transaction.public_id, "result": result, "note": note, "refund": refund_id or None,
                 "reviewer_type": str(actor.type), "reviewer": actor.id[:150]},
    )
    review_announce(review, event_type=EventType.REVIEW_CLOSED)
    return review
