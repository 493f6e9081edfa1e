"""Ledger adjustments under four eyes: reconciliation corrections (a gateway fee that differs
from what was booked, a settlement the gateway holds differently) and manual corrections
(a goodwill credit, a fee waived). A correction is always a new ledger transaction: nothing
posted is ever changed.

`ledger_adjustment_request` records what should move and why (requires_approval); a second
person holding ledger.adjust_approve, never the requester, approves it, which posts it, or
rejects it. Reconciliation requests with its worker or system actor; a staff requester needs
ledger.adjust. Every step is audited in its own database transaction.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.errors import ErrorCode, InvalidRequest, InvalidState, NotFound, PermissionDenied
from core.money import MAX_AMOUNT, is_supported_currency
from core.permissions import Capability, roles_can
from ledger.models import AccountCode, BalanceType, LedgerAdjustment, LedgerKind, SourceType
from ledger.models.adjustments import ADJUSTABLE_CODES, ADJUSTMENT_TYPES
from ledger.services.movements import clearing, merchant_credit, merchant_debit
from ledger.services.postings import AccountRef, Leg, Posting, credit, debit, ledger_post

REASON_MAX_LENGTH = 500
C = AccountCode


def _valid_reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_MAX_LENGTH or "\x00" in reason:
        raise InvalidRequest(f"A reason of 1 to {REASON_MAX_LENGTH} characters is required.",
                             code=ErrorCode.PARAMETER_MISSING, param="reason")
    return reason


@transaction.atomic
def ledger_adjustment_request(
    *, merchant_id: int, livemode: bool, currency: str, amount: int, debit_code: str, credit_code: str, reason: str,
    actor: Actor, gateway: str = "", balance_type: str = BalanceType.ADJUSTMENT, source_type: str = "", source_id: str = "",
) -> LedgerAdjustment:
    """Ask for `amount` to move from the `debit_code` account to the `credit_code` account of
    the merchant's mode and currency (ADJUSTABLE_CODES; `gateway` names a gateway_clearing
    side). It posts nothing until approved."""
    if actor.type == ActorType.API or (actor.type == ActorType.STAFF and not roles_can(actor.roles, Capability.LEDGER_ADJUST)):
        raise PermissionDenied("Ledger adjustments need the finance or admin role.")
    reason = _valid_reason(reason)
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise InvalidRequest(f"The amount must be an integer from 1 to {MAX_AMOUNT} minor units.", param="amount")
    if not is_supported_currency(currency):
        raise InvalidRequest(f"Unknown currency {currency[:8]!r}.", code=ErrorCode.INVALID_CURRENCY, param="currency")
    if debit_code not in ADJUSTABLE_CODES or credit_code not in ADJUSTABLE_CODES or debit_code == credit_code:
        raise InvalidRequest(f"An adjustment moves money between two of: {', '.join(ADJUSTABLE_CODES)}.", param="debit_code")
    if (C.GATEWAY_CLEARING in (debit_code, credit_code)) != bool(gateway):
        raise InvalidRequest("Name the gateway exactly when one side is a gateway's clearing account.", param="gateway")
    if balance_type not in ADJUSTMENT_TYPES:
        raise InvalidRequest(f"The type must be one of: {', '.join(ADJUSTMENT_TYPES)}.", param="balance_type")
    adjustment = LedgerAdjustment.objects.create(
        merchant_id=merchant_id, livemode=livemode, currency=currency, amount=amount, debit_code=debit_code,
        credit_code=credit_code, gateway=gateway, balance_type=balance_type, reason=reason, source_type=source_type,
        source_id=source_id, requested_by_type=str(actor.type), requested_by_id=actor.id[:150],
        requested_by_user_id=actor.user_id,
    )
    audit_record(actor=actor, action=AuditAction.LEDGER_ADJUSTMENT_REQUEST, target=adjustment, merchant_id=merchant_id,
                 details={"amount": amount, "currency": currency, "debit": debit_code, "credit": credit_code,
                          "gateway": gateway or None, "reason": reason, "source": source_id or None})
    return adjustment


def _lock(adjustment_id: int) -> LedgerAdjustment:
    adjustment = LedgerAdjustment.objects.select_for_update().filter(pk=adjustment_id).first()
    if adjustment is None:
        raise NotFound(f"No such ledger adjustment: {adjustment_id}")
    return adjustment


def _check_approver(actor: Actor, adjustment: LedgerAdjustment) -> None:
    if actor.type != ActorType.STAFF or not roles_can(actor.roles, Capability.LEDGER_ADJUST_APPROVE):
        raise PermissionDenied("Approving or rejecting a ledger adjustment needs the finance or admin role.")
    if adjustment.requested_by_user_id is not None and adjustment.requested_by_user_id == actor.user_id:
        raise PermissionDenied("Four-eyes rule: a ledger adjustment must be approved by someone other than its requester.")


def _leg(code: str, *, side: str, amount: int, gateway: str) -> Leg:
    if code == C.MERCHANT_AVAILABLE:
        return merchant_debit(amount) if side == "debit" else merchant_credit(amount)
    ref = clearing(gateway) if code == C.GATEWAY_CLEARING else AccountRef(C(code))
    return debit(ref, amount) if side == "debit" else credit(ref, amount)


@transaction.atomic
def ledger_adjustment_approve(*, adjustment_id: int, actor: Actor) -> LedgerAdjustment:
    """The second pair of eyes: post the adjustment (one ledger transaction)."""
    adjustment = _lock(adjustment_id)
    _check_approver(actor, adjustment)
    if not can_proceed(adjustment.approve):
        raise InvalidState(f"Cannot approve a {adjustment.status} adjustment.")
    amount = adjustment.amount
    # What the merchant sees: credited (+) or debited (-) when one side is its available funds.
    shown = {}
    if C.MERCHANT_AVAILABLE in (adjustment.debit_code, adjustment.credit_code):
        signed = amount if adjustment.credit_code == C.MERCHANT_AVAILABLE else -amount
        shown = {"balance_type": BalanceType(adjustment.balance_type), "amount": signed}
    result = ledger_post(posting=Posting(
        merchant_id=adjustment.merchant_id, livemode=adjustment.livemode, currency=adjustment.currency,
        kind=LedgerKind.ADJUSTMENT, idempotency_key=f"adjustment:{adjustment.public_id}",
        source_type=SourceType.ADJUSTMENT, source_id=adjustment.public_id,
        legs=[_leg(adjustment.debit_code, side="debit", amount=amount, gateway=adjustment.gateway),
              _leg(adjustment.credit_code, side="credit", amount=amount, gateway=adjustment.gateway)],
        effective_at=timezone.now(), description=adjustment.reason[:500], **shown,
    ))
    adjustment.approve(user=get_user_model().objects.get(pk=actor.user_id), ledger_transaction=result.ledger_transaction,
                       now=timezone.now())
    adjustment.save()
    audit_record(actor=actor, action=AuditAction.LEDGER_ADJUSTMENT_APPROVE, target=adjustment,
                 details={"ledger_transaction": result.ledger_transaction.public_id, "amount": amount,
                          "currency": adjustment.currency, "requested_by": adjustment.requested_by_id})
    return adjustment


@transaction.atomic
def ledger_adjustment_reject(*, adjustment_id: int, actor: Actor, reason: str = "") -> LedgerAdjustment:
    adjustment = _lock(adjustment_id)
    _check_approver(actor, adjustment)
    if not can_proceed(adjustment.reject):
        raise InvalidState(f"Cannot reject a {adjustment.status} adjustment.")
    if not isinstance(reason, str) or len(reason) > REASON_MAX_LENGTH or "\x00" in reason:
        raise InvalidRequest(f"The reason must be text of at most {REASON_MAX_LENGTH} characters.", param="reason")
    adjustment.reject(user=get_user_model().objects.get(pk=actor.user_id), reason=reason, now=timezone.now())
    adjustment.save()
    audit_record(actor=actor, action=AuditAction.LEDGER_ADJUSTMENT_REJECT, target=adjustment, result="failure",
                 details={"reason": reason, "requested_by": adjustment.requested_by_id})
    return adjustment

