"""Who may refund, how much, and when: the staff capabilities, the four-eyes limit, the
reason rule and the open-dispute rule, shared by every refund service (and the reason
length by the chargeback services and forms)."""

from __future__ import annotations

from django.conf import settings

from core.actors import Actor, ActorType
from core.errors import ErrorCode, InvalidRequest, InvalidState, NotFound, PermissionDenied
from core.permissions import Capability, roles_can
from payments.models import Transaction
from refunds.models import OPEN_CHARGEBACK_STATES, Chargeback, Refund

REASON_MAX_LENGTH = 500


def support_refund_limit() -> int:
    return settings.FLOWPAY_SUPPORT_REFUND_LIMIT


def refund_needs_approval(*, actor: Actor, amount: int) -> bool:
    """Four-eyes rule: a staff refund above FLOWPAY_SUPPORT_REFUND_LIMIT (minor units of the
    transaction's currency) waits for an approval unless the requester may approve refunds
    (refund.approve). Merchants refunding their own payments are not limited."""
    if actor.type != ActorType.STAFF:
        return False
    return not roles_can(actor.roles, Capability.REFUND_APPROVE) and amount > support_refund_limit()


def check_may_refund(actor: Actor, txn: Transaction, capability: Capability) -> None:
    if actor.type == ActorType.STAFF and not roles_can(actor.roles, capability):
        raise PermissionDenied("Refunds need the support, finance or admin role.")
    if actor.type == ActorType.API and actor.merchant_id != txn.merchant_id:
        raise NotFound(f"No such transaction: '{txn.public_id}'", param="id")


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
