"""The refund invariant, enforced by the database: succeeded + in-flight + awaiting-approval
refunds never exceed the captured amount.

Every refund reserves its amount on the transaction with one conditional UPDATE
(`amount_refund_reserved + amount + amount_disputed <= amount_captured`) and CHECK
constraints bound the reservation by the captured amount. A failed or rejected refund gives
its reservation back; a succeeded one moves its amount into amount_refunded. Services lock
the transaction, then the refund (lock_refund), the same order everywhere.
"""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import AmountTooLarge, NotFound
from core.money import format_minor_units
from payments.models import Transaction, TransactionStatus
from payments.models.transactions import CAPTURED_STATES
from refunds.models import Chargeback, ChargebackStatus, Refund
from refunds.services.ledger_postings import chargeback_post_absorbed, refund_post


def lock_refund(refund_id: int) -> tuple[Transaction, Refund]:
    """Lock the transaction, then the refund: the same order everywhere, so two services
    never wait on each other in a cycle."""
    transaction_id = Refund.objects.filter(pk=refund_id).values_list("transaction_id", flat=True).first()
    if transaction_id is None:
        raise NotFound(f"No such refund: {refund_id}")
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    return txn, refund


def reserve_amount(*, transaction_id: int, amount: int) -> bool:
    """Add `amount` to the transaction's refund reservation if, and only if, succeeded +
    in-flight refunds + withdrawn chargeback funds stay within the captured amount. One
    conditional UPDATE: correct under any concurrency, whoever else writes the row."""
    return bool(
        Transaction.objects.filter(pk=transaction_id, status__in=CAPTURED_STATES)
        .filter(amount_refund_reserved__lte=F("amount_captured") - F("amount_disputed") - amount)
        .update(amount_refund_reserved=F("amount_refund_reserved") + amount, updated_at=timezone.now())
    )


def release_amount(*, transaction_id: int, amount: int) -> None:
    """Give a failed or rejected refund's reservation back. A dispute lost while that refund
    was in flight covered it as refunded money; now that the refund did not happen, that part
    of the dispute is withdrawn from the payment instead (callers hold the row lock)."""
    Transaction.objects.filter(pk=transaction_id).update(
        amount_refund_reserved=F("amount_refund_reserved") - amount, updated_at=timezone.now()
    )
    disputes_absorb_released(transaction_id=transaction_id)


def disputes_absorb_released(*, transaction_id: int) -> None:
    covering = list(
        Chargeback.objects.select_for_update()
        .filter(transaction_id=transaction_id, status__in=[ChargebackStatus.LOST, ChargebackStatus.ACCEPTED],
                amount_withdrawn__lt=F("amount"))
        .order_by("pk")
    )
    if not covering:
        return
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    for chargeback in covering:
        moved = min(chargeback.amount_on_refunded_funds, txn.amount_refundable)
        if moved <= 0:
            return
        Chargeback.objects.filter(pk=chargeback.pk).update(amount_withdrawn=F("amount_withdrawn") + moved)
        chargeback_post_absorbed(txn=txn, chargeback=chargeback, moved=moved, withdrawn_total=chargeback.amount_withdrawn + moved)
        txn.record_funds_withdrawn(amount=moved)
        txn.save(update_fields=["amount_disputed", "disputed", "updated_at"])
        audit_record(
            actor=Actor.system("refunds.release"), action=AuditAction.TRANSACTION_DISPUTED, target=txn,
            details={"chargeback": chargeback.public_id, "amount_withdrawn": moved, "reason": "refund_failed",
                     "amount_disputed": txn.amount_disputed},
        )


def amount_too_large(txn: Transaction, amount: int) -> AmountTooLarge:
    """The error for a reservation refused: what is still refundable, in words."""
    remaining = txn.amount_refundable
    return AmountTooLarge(
        f"Refund amount {amount} exceeds the amount still refundable on {txn.public_id}: {remaining} "
        f"({format_minor_units(remaining, txn.currency)}).",
        param="amount",
    )


def apply_to_transaction(*, txn: Transaction, refund: Refund, actor: Actor) -> None:
    """A refund succeeded: add it to the transaction's amount_refunded (and status)."""
    # The row is locked by the caller and amount_refund_reserved already covers this refund;
    # only amount_refunded and the status are written.
    txn.apply_refund(amount=refund.amount)
    txn.save(update_fields=["amount_refunded", "status", "updated_at"])
    refund_post(txn=txn, refund=refund)
    refunded = txn.status == TransactionStatus.REFUNDED  # else partially refunded (apply_refund's only targets)
    audit_record(
        actor=actor, action=AuditAction.TRANSACTION_REFUNDED if refunded else AuditAction.TRANSACTION_PARTIALLY_REFUNDED, target=txn,
        details={"refund": refund.public_id, "amount": refund.amount, "amount_refunded": txn.amount_refunded},
    )
