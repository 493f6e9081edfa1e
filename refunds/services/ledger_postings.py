"""The ledger postings of refunds and chargebacks (ledger.services.movements), each called
once per money movement inside the database transaction of the change that causes it,
after the transaction's and the refund's or chargeback's row locks (the usual order)."""

from django.utils import timezone

from ledger.services.movements import (
    ChargebackFacts,
    Money,
    ledger_post_chargeback_absorbed,
    ledger_post_chargeback_lost,
    ledger_post_chargeback_opened,
    ledger_post_chargeback_won,
    ledger_post_refund,
)
from payments.models import Transaction
from refunds.models import Chargeback, ChargebackStatus, Refund


def _money(txn: Transaction) -> Money:
    return Money(merchant_id=txn.merchant_id, livemode=txn.livemode, currency=txn.currency)


def refund_post(*, txn: Transaction, refund: Refund) -> None:
    """A refund succeeded (an off-gateway credit clears through the `manual` account)."""
    ledger_post_refund(
        money=_money(txn), gateway=refund.gateway, refund_public_id=refund.public_id, transaction_public_id=txn.public_id,
        amount=refund.amount, refunded_at=refund.succeeded_at or timezone.now(),
    )


def chargeback_facts(txn: Transaction, chargeback: Chargeback) -> ChargebackFacts:
    return ChargebackFacts(
        money=_money(txn), gateway=chargeback.gateway or txn.gateway, public_id=chargeback.public_id,
        transaction_public_id=txn.public_id, amount=chargeback.amount, opened_at=chargeback.created_at,
    )


def chargeback_post_opened(*, txn: Transaction, chargeback: Chargeback, gateway_fee: int | None) -> None:
    ledger_post_chargeback_opened(chargeback=chargeback_facts(txn, chargeback), gateway_fee=gateway_fee)


def chargeback_post_closed(*, txn: Transaction, chargeback: Chargeback) -> None:
    """Won (funds reinstated), or lost / accepted (funds withdrawn)."""
    facts, closed_at = chargeback_facts(txn, chargeback), chargeback.closed_at or timezone.now()
    if chargeback.status == ChargebackStatus.WON:
        ledger_post_chargeback_won(chargeback=facts, closed_at=closed_at)
    else:
        ledger_post_chargeback_lost(chargeback=facts, withdrawn=chargeback.amount_withdrawn,
                                    on_refunded_funds=chargeback.amount_on_refunded_funds, closed_at=closed_at)


def chargeback_post_absorbed(*, txn: Transaction, chargeback: Chargeback, moved: int, withdrawn_total: int) -> None:
    ledger_post_chargeback_absorbed(chargeback=chargeback_facts(txn, chargeback), moved=moved,
                                    withdrawn_total=withdrawn_total, occurred_at=timezone.now())
