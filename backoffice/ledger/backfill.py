"""Posting the history that predates the ledger (manage.py ledger_backfill): the captures,
refunds and chargebacks recorded before payments posted to it, with the same posting rules
and idempotency keys as the live code, at their original times (captures' funds then become
available on the next release run: their availability date has passed).

Idempotent: a movement already posted (live or by an earlier run) is skipped, so a second
run posts nothing; live postings running at the same time are safe (same keys). Fees use
each merchant's fee schedule (the gateways' own fees are not known for old payments:
reconciliation corrects them). Each posting is its own database transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from ledger.models import LedgerKind, LedgerTransaction
from ledger.services.movements import Money, ledger_post_capture
from payments.models import Transaction
from payments.models.transactions import CAPTURED_STATES
from refunds.models import Chargeback, ChargebackStatus, Refund, RefundStatus
from refunds.services.ledger_postings import chargeback_post_closed, chargeback_post_opened, refund_post


@dataclass(frozen=True)
class BackfillItem:
    kind: str  # the posting rule
    source: str  # the object's public id
    merchant: str
    amount: int
    currency: str


@dataclass
class BackfillReport:
    items: list[BackfillItem] = field(default_factory=list)
    posted: Counter = field(default_factory=Counter)  # kind -> postings made (0 in a dry run)

    @property
    def planned(self) -> Counter:
        return Counter(item.kind for item in self.items)


def _posted(kind: LedgerKind, source_field: str = "public_id"):
    return Exists(LedgerTransaction.objects.filter(kind=kind, source_id=OuterRef(source_field)))


def _missing_postings() -> Iterator[tuple[BackfillItem, Callable[[], object]]]:
    """What has no posting yet, oldest first per kind, with the call that posts it."""
    captures = (Transaction.objects.filter(status__in=CAPTURED_STATES).exclude(_posted(LedgerKind.PAYMENT))
                .select_related("merchant").order_by("finalized_at", "id"))
    for txn in captures.iterator():
        yield BackfillItem("payment", txn.public_id, txn.merchant.public_id, txn.amount_captured, txn.currency), (
            lambda t=txn: ledger_post_capture(
                money=Money(merchant_id=t.merchant_id, livemode=t.livemode, currency=t.currency), gateway=t.gateway,
                transaction_public_id=t.public_id, amount=t.amount_captured, gateway_fee=None,
                captured_at=t.finalized_at or t.created_at,
            )
        )
    yield from _missing_refunds()
    chargebacks = Chargeback.objects.select_related("transaction", "merchant").order_by("created_at", "id")
    for cb in chargebacks.exclude(_posted(LedgerKind.CHARGEBACK)).iterator():
        yield BackfillItem("chargeback", cb.public_id, cb.merchant.public_id, cb.amount, cb.currency), (
            lambda c=cb: chargeback_post_opened(txn=c.transaction, chargeback=c, gateway_fee=None)
        )
    closed = chargebacks.annotate(lost=_posted(LedgerKind.CHARGEBACK_LOST), won=_posted(LedgerKind.CHARGEBACK_WON)).filter(
        Q(status__in=[ChargebackStatus.LOST, ChargebackStatus.ACCEPTED], lost=False) | Q(status=ChargebackStatus.WON, won=False)
    )
    for cb in closed.iterator():
        kind = "chargeback_won" if cb.status == ChargebackStatus.WON else "chargeback_lost"
        yield BackfillItem(kind, cb.public_id, cb.merchant.public_id, cb.amount, cb.currency), (
            lambda c=cb: chargeback_post_closed(txn=c.transaction, chargeback=c)
        )


def _missing_refunds() -> Iterator[tuple[BackfillItem, Callable[[], object]]]:
    """Succeeded refunds without a posting, as far as the payment's amount_refunded goes (a
    refund the gateway made that FlowPay could not count, an over-refund alert, is left to
    reconciliation, as it is live)."""
    refunds = (Refund.objects.filter(status=RefundStatus.SUCCEEDED).exclude(_posted(LedgerKind.REFUND))
               .select_related("transaction", "merchant").order_by("transaction_id", "succeeded_at", "id"))
    room: dict[int, int] = {}
    for refund in refunds.iterator():
        txn = refund.transaction
        if txn.pk not in room:
            already = LedgerTransaction.objects.filter(
                kind=LedgerKind.REFUND, source_id__in=txn.refunds.values("public_id"),
            ).values_list("amount", flat=True)
            room[txn.pk] = txn.amount_refunded + sum(already)  # refund postings are negative
        if refund.amount > room[txn.pk]:
            continue
        room[txn.pk] -= refund.amount
        yield BackfillItem("refund", refund.public_id, refund.merchant.public_id, refund.amount, refund.currency), (
            lambda r=refund: refund_post(txn=r.transaction, refund=r)
        )


def ledger_backfill(*, dry_run: bool) -> BackfillReport:
    report = BackfillReport()
    for item, post in _missing_postings():
        report.items.append(item)
        if not dry_run:
            with transaction.atomic():
                post()
            report.posted[item.kind] += 1
    return report
