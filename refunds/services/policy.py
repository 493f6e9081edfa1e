"""Who may refund, how much, and when: the staff capabilities, the four-eyes limits (per
user and payment, per user and day), the reason rule and the open-dispute rule, shared by every refund service (and the reason
length by the chargeback services and forms)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q, Sum
from django.utils import timezone

from core.actors import Actor, ActorType
from core.errors import ErrorCode, InvalidRequest, InvalidState, NotFound, PermissionDenied
from core.permissions import Capability, roles_can
from payments.models import Transaction
from refunds.models import OPEN_CHARGEBACK_STATES, Chargeback, Refund

REASON_MAX_LENGTH = 500


def support_refund_limit() -> int:
    return settings.FLOWPAY_SUPPORT_REFUND_LIMIT


# The four-eyes limits count what one user refunds over this window.
DAILY_WINDOW = dt.timedelta(hours=24)


@dataclass(frozen=True)
class ApprovalDecision:
    """Whether a staff refund needs a second person, and what the requester's totals would be
    with it: on the payment (against FLOWPAY_SUPPORT_REFUND_LIMIT) and over the last 24 hours
    in the payment's currency (against FLOWPAY_SUPPORT_REFUND_DAILY_LIMIT)."""

    needed: bool
    on_payment: int = 0
    last_24h: int = 0

    def audit_details(self) -> dict:
        if not self.needed:
            return {"limit": None}
        return {"limit": support_refund_limit(), "daily_limit": settings.FLOWPAY_SUPPORT_REFUND_DAILY_LIMIT,
                "requester_total_on_payment": self.on_payment, "requester_total_24h": self.last_24h}


def refund_needs_approval(*, actor: Actor, txn: Transaction, amount: int, exclude_refund_id: int | None = None) -> ApprovalDecision:
    """Four-eyes rule for a staff user who may not approve refunds (refund.approve): a refund
    waits for an approval when, with it, what this user refunds on this payment exceeds
    FLOWPAY_SUPPORT_REFUND_LIMIT, or what they refund in the payment's currency over the last
    24 hours exceeds FLOWPAY_SUPPORT_REFUND_DAILY_LIMIT (minor units). A limit cannot be
    split: every refund of theirs that holds a reservation counts (awaiting approval, pending,
    in flight, succeeded, failed with an unknown outcome), only those known to have refunded
    nothing (failed, rejected) do not. Merchants refunding their own payments are not limited.

    Must run in the caller's transaction: it locks the user's row, so two concurrent refunds
    by one user are decided one after the other, each seeing the other's amount."""
    if actor.type != ActorType.STAFF or roles_can(actor.roles, Capability.REFUND_APPROVE):
        return ApprovalDecision(needed=False)
    _lock_user(actor.user_id)
    since = timezone.now() - DAILY_WINDOW
    theirs = Refund.objects.filter(requested_by_user_id=actor.user_id, holds_reservation=True)
    if exclude_refund_id is not None:
        theirs = theirs.exclude(pk=exclude_refund_id)
    totals = theirs.aggregate(
        on_payment=Sum("amount", filter=Q(transaction_id=txn.pk), default=0),
        last_24h=Sum("amount", filter=Q(currency=txn.currency, created_at__gte=since), default=0),
    )
    on_payment, last_24h = totals["on_payment"] + amount, totals["last_24h"] + amount
    needed = on_payment > support_refund_limit() or last_24h > settings.FLOWPAY_SUPPORT_REFUND_DAILY_LIMIT
    return ApprovalDecision(needed=needed, on_payment=on_payment, last_24h=last_24h)


def _lock_user(user_id: int) -> None:
    list(get_user_model().objects.select_for_update().filter(pk=user_id).values_list("pk", flat=True))


def check_may_refund(actor: Actor, txn: Transaction, capability: Capability) -> None:
    if actor.type == ActorType.STAFF and not roles_can(actor.roles, capability):
        raise PermissionDenied("Refunds need the support, finance or admin role.")
    if actor.type == ActorType.API and actor.merchant_id != txn.merchant_id:
        raise NotFound(f"No such transaction: '{txn.public_id}'", param="id")


def check_retry_within_limits(actor: Actor, txn: Transaction, refund: Refund) -> None:
    """A retry moves the money again: a failed refund counted for nothing, so a staff user
    who may not approve retries it only within their own four-eyes limits (a retry has no
    approval step: above them, a finance or admin user retries it)."""
    if refund.holds_reservation:
        return  # an unknown outcome: still counted, the retry only finds out
    if refund_needs_approval(actor=actor, txn=txn, amount=refund.amount, exclude_refund_id=refund.pk).needed:
        raise PermissionDenied(
            "Retrying this refund would take you over the four-eyes limit "
            f"({support_refund_limit()} per payment, {settings.FLOWPAY_SUPPORT_REFUND_DAILY_LIMIT} per 24 hours, minor units): "
            "a finance or admin user must retry it."
        )


def check_approver(actor: Actor, refund: Refund) -> None:
    if actor.type != ActorType.STAFF or not roles_can(actor.roles, Capability.REFUND_APPROVE):
        raise PermissionDenied("Approving or rejecting a refund needs the finance or admin role.")
    if refund.requested_by_user_id is not None and refund.requested_by_user_id == actor.user_id:
        raise PermissionDenied("Four-eyes rule: a refund must be approved by someone other than its requester.")


def validate_reason(reason: str, actor: Actor) -> str:
    if not isinstance(reason, str) or len(reason) > REASON_MAX_LENGTH or "\x00" in reason:
        raise InvalidRequest(f"The reason must be text of at most {REASON_MAX_LENGTH} characters.", param="reason")
    if actor.type == ActorType.STAFF and not reason.strip():
        raise InvalidRequest("A reason is required for refunds issued by staff.", code=ErrorCode.PARAMETER_MISSING, param="reason")
    return reason  # stored verbatim: never trimmed, never sanitised (it is escaped on output)


def check_no_open_dispute(txn: Transaction) -> None:
    if Chargeback.objects.filter(transaction=txn, status__in=OPEN_CHARGEBACK_STATES).exists():
        raise InvalidState(
            f"Transaction {txn.public_id} has an open chargeback: it cannot be refunded until the dispute is closed "
            "(refunding now could return the money twice).",
            code=ErrorCode.CHARGE_DISPUTED,
        )
