"""Whether every money movement recorded by payments and refunds has its ledger postings
(the part of verify_ledger that reads other apps, so it lives in the back office):

- every captured payment (completed, partially refunded, refunded) has its `payment`
  posting, of its captured amount;
- the refund postings of a payment add up to its amount_refunded (a refund the gateway made
  but FlowPay could not count, an over-refund alert, is in neither);
- every chargeback has its opening posting; a lost or accepted one its loss posting, and its
  ledger withdrawals (the disputed amount less what covered refunded money, plus refunds
  that failed afterwards) equal its amount_withdrawn; a won one its reinstatement.

The rule "refund reservations plus disputed funds never exceed the captured amount" needs no
check here: it is the CHECK constraint txn_refunds_and_disputes_within_captured on
payments_transaction.
"""

from __future__ import annotations

from django.db.models import Exists, F, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from ledger.models import LedgerKind, LedgerTransaction
from payments.models import Transaction
from payments.models.transactions import CAPTURED_STATES
from refunds.models import Chargeback, ChargebackStatus, Refund

LISTED = 20
LOST_STATES = [ChargebackStatus.LOST, ChargebackStatus.ACCEPTED]


def _posted(kind: LedgerKind, *, source_field: str = "public_id", field: str = "amount"):
    return Subquery(
        LedgerTransaction.objects.filter(kind=kind, source_id=OuterRef(source_field)).values(field)[:1],
        output_field=IntegerField(),
    )


def _listed(problems: list[str], found: list[str], what: str) -> None:
    problems += found[:LISTED]
    if len(found) > LISTED:
        problems.append(f"... and {len(found) - LISTED} more {what}")


def coverage_problems(*, merchant_id: int | None = None) -> list[str]:
    problems: list[str] = []
    narrow = Q(merchant_id=merchant_id) if merchant_id is not None else Q()
    _payments(problems, narrow)
    _refunds(problems, narrow)
    _chargebacks(problems, narrow)
    return problems


def _payments(problems: list[str], narrow: Q) -> None:
    captured = (
        Transaction.objects.filter(narrow, status__in=CAPTURED_STATES)
        .annotate(posted=_posted(LedgerKind.PAYMENT)).filter(Q(posted__isnull=True) | ~Q(posted=F("amount_captured")))
        .values_list("public_id", "status", "amount_captured", "posted").order_by("id")
    )
    found = [
        f"transaction {public_id} ({status}, captured {amount}) has no capture posting" if posted is None
        else f"transaction {public_id}: capture posted {posted}, captured {amount}"
        for public_id, status, amount, posted in captured
    ]
    _listed(problems, found, "captured transactions without their capture posting")


def _refunds(problems: list[str], narrow: Q) -> None:
    refunded = LedgerTransaction.objects.filter(
        kind=LedgerKind.REFUND,
        source_id__in=Refund.objects.filter(transaction_id=OuterRef(OuterRef("pk"))).values("public_id"),
    )
    total = Subquery(
        refunded.order_by().values("kind").annotate(total=Sum("amount")).values("total")[:1], output_field=IntegerField(),
    )
    rows = (
        Transaction.objects.filter(narrow, status__in=CAPTURED_STATES)
        .filter(Q(amount_refunded__gt=0) | Exists(Refund.objects.filter(transaction_id=OuterRef("pk"), status="succeeded")))
        .annotate(posted=Coalesce(-total, 0)).exclude(posted=F("amount_refunded"))
        .values_list("public_id", "amount_refunded", "posted").order_by("id")
    )
    found = [f"transaction {public_id}: refunded {refunded_amount}, refund postings total {posted}"
             for public_id, refunded_amount, posted in rows]
    _listed(problems, found, "transactions whose refund postings do not add up")


def _chargebacks(problems: list[str], narrow: Q) -> None:
    chargebacks = Chargeback.objects.filter(narrow).annotate(
        opened=_posted(LedgerKind.CHARGEBACK, field="id"),
        lost=_posted(LedgerKind.CHARGEBACK_LOST, field="amount"),
        lost_id=_posted(LedgerKind.CHARGEBACK_LOST, field="id"),
        won=_posted(LedgerKind.CHARGEBACK_WON, field="id"),
        absorbed=Coalesce(Subquery(
            LedgerTransaction.objects.filter(kind=LedgerKind.CHARGEBACK_ABSORBED, source_id=OuterRef("public_id"))
            .order_by().values("kind").annotate(total=Sum("amount")).values("total")[:1], output_field=IntegerField(),
        ), 0),
    ).order_by("id")
    found = []
    for cb in chargebacks.iterator():
        if cb.opened is None:
            found.append(f"chargeback {cb.public_id} ({cb.status}) has no opening posting")
        if cb.status in LOST_STATES:
            if cb.lost_id is None:
                found.append(f"chargeback {cb.public_id} ({cb.status}) has no loss posting")
            else:
                # The loss posting shows the merchant what covered refunded money (0: none).
                withdrawn = cb.amount - (cb.lost or 0) - cb.absorbed
                if withdrawn != cb.amount_withdrawn:
                    found.append(f"chargeback {cb.public_id}: withdrawn {cb.amount_withdrawn}, ledger withdrew {withdrawn}")
        if cb.status == ChargebackStatus.WON and cb.won is None:
            found.append(f"chargeback {cb.public_id} (won) has no reinstatement posting")
    _listed(problems, found, "chargebacks without their postings")
