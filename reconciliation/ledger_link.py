"""Where reconciliation meets the double-entry ledger (ledger/, the layer below).

- `recorded_fees_sql`: the fee each payment of a gateway cost in FlowPay's books, for the
  matcher to compare with the gateway's (`fee_mismatch`). It is the sum of the payment's
  entries on the FEES account: its capture's posting (the fee the gateway reported at
  capture) and the reconciliation adjustments posted since for its items. A payment whose
  gateway reported no fee at capture (the simulator, PayPal before its report) has no such
  entry: its fee is unknown to the books and is not compared (its merchant pays its fee
  schedule; the gateway's figure is still stored on the run's totals). One set-based query,
  joined once per run: a million rows need no per-row call.
- `post_adjustment`: the four-eyes approval of a `ledger_adjustment` resolution posts, in
  the caller's database transaction, one balanced ledger transaction under the idempotency
  key `reconciliation:<item public id>` (approving twice posts once), source the item:
  - a fee difference (gateway fee − recorded fee; `fee_mismatch`): D FEES / C gateway
    clearing when the gateway took more (the reverse when less). The platform bears it: the
    merchant's fee schedule does not change;
  - an amount difference (gateway − FlowPay, any other category): D gateway clearing / C the
    merchant's available funds when the gateway settled more, the reverse when less (a
    debit past the available funds goes to the merchant's receivable). The gateway's figure
    is what moved: the clearing account then agrees with it.
  It refuses (InvalidRequest, nothing posted) an item without a merchant, a difference of
  zero, or two currencies. `verify_ledger` still balances after it.
"""

from __future__ import annotations

from django.utils import timezone

from core.errors import InvalidRequest
from ledger.models import AccountCode, BalanceType, LedgerAccount, LedgerEntry, LedgerKind, LedgerTransaction, SourceType
from ledger.services.movements import clearing, merchant_credit, merchant_debit
from ledger.services.postings import AccountRef, Posting, credit, debit, ledger_post
from payments.models import Transaction
from reconciliation.models import Category, ReconciliationItem

FEES = AccountRef(AccountCode.FEES)


def recorded_fees_sql(*, gateway: str) -> tuple[str, dict] | None:
    """A query of (transaction_id, fee) for the payments of `gateway` whose fee the ledger
    recorded (see the module's rules), with its parameters."""
    tables = {
        "transactions": Transaction._meta.db_table, "items": ReconciliationItem._meta.db_table,
        "ltx": LedgerTransaction._meta.db_table, "entries": LedgerEntry._meta.db_table,
        "accounts": LedgerAccount._meta.db_table,
    }
    # No braces in the text: the matcher formats the statements it is joined into.
    sql = (
        "SELECT s.transaction_id, sum(CASE WHEN e.side = 'debit' THEN e.amount ELSE -e.amount END)::bigint AS fee"
        " FROM ("
        "   SELECT t.id AS transaction_id, lt.id AS ltx_id FROM " + tables["ltx"] + " lt"
        "   JOIN " + tables["transactions"] + " t ON t.public_id = lt.source_id"
        "   WHERE lt.source_type = 'transaction' AND lt.kind = 'payment' AND t.gateway = %(fees_gateway)s"
        "   UNION ALL"
        "   SELECT i.transaction_id, lt.id FROM " + tables["ltx"] + " lt"
        "   JOIN " + tables["items"] + " i ON i.public_id = lt.source_id"
        "   WHERE lt.source_type = 'reconciliation_item' AND i.gateway = %(fees_gateway)s"
        "     AND i.transaction_id IS NOT NULL"
        " ) s"
        " JOIN " + tables["entries"] + " e ON e.ledger_transaction_id = s.ltx_id"
        " JOIN " + tables["accounts"] + " a ON a.id = e.account_id AND a.code = 'fees'"
        " GROUP BY s.transaction_id"
    )
    return sql, {"fees_gateway": gateway}


def post_adjustment(*, item: ReconciliationItem, amount: int, currency: str, requested_by, approved_by) -> str:
    """Post the adjustment of a reconciliation item (see the module's rules); the public id
    of its ledger transaction. `amount` is the item's amount difference (gateway − FlowPay)."""
    merchant_id = item.merchant_id or (item.transaction.merchant_id if item.transaction_id else None)
    if merchant_id is None:
        raise InvalidRequest("This item names no merchant: nothing can be posted to a merchant's ledger. "
                             "Resolve it another way.", param="resolution")
    if item.gateway_currency and item.flowpay_currency and item.gateway_currency != item.flowpay_currency:
        raise InvalidRequest("The gateway and FlowPay disagree on the currency: a ledger adjustment cannot "
                             "convert one into the other. Resolve it another way.", param="resolution")
    livemode = item.transaction.livemode if item.transaction_id else False
    fee_item = item.category == Category.FEE_MISMATCH
    what = "fee" if fee_item else "amount"
    difference = (item.gateway_fee or 0) - (item.flowpay_fee or 0) if fee_item else amount
    if difference == 0:
        raise InvalidRequest(f"The gateway's and FlowPay's {what} agree on this item: there is nothing to post.",
                             param="resolution")
    gateway_clearing, size = clearing(item.gateway), abs(difference)
    shown: dict = {}
    if fee_item:
        legs = [debit(FEES, size), credit(gateway_clearing, size)] if difference > 0 else \
            [debit(gateway_clearing, size), credit(FEES, size)]
    else:
        legs = [debit(gateway_clearing, size), merchant_credit(size)] if difference > 0 else \
            [merchant_debit(size), credit(gateway_clearing, size)]
        shown = {"balance_type": BalanceType.ADJUSTMENT, "amount": difference}
    result = ledger_post(posting=Posting(
        merchant_id=merchant_id, livemode=livemode, currency=currency, kind=LedgerKind.ADJUSTMENT,
        idempotency_key=f"reconciliation:{item.public_id}", source_type=SourceType.RECONCILIATION_ITEM,
        source_id=item.public_id, legs=legs, effective_at=timezone.now(),
        description=f"Reconciliation {item.public_id}: {item.category} {what} difference {difference} {currency}"[:500],
        **shown,
    ))
    return result.ledger_transaction.public_id
