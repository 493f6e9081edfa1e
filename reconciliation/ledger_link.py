"""Where reconciliation meets the double-entry ledger: the two seams to wire when the
ledger app exists. Until then:

- `recorded_fees_sql` answers None: FlowPay has no record of the fees its gateways take, so
  a fee is "unknown" and no run reports `fee_mismatch` (the gateway's fee is still stored on
  the items and in the run's totals);
- `post_adjustment` raises LedgerUnavailable: a `ledger_adjustment` resolution can be
  requested (four-eyes), but its approval fails with a clear error and changes nothing.

Wiring (ledger app): `recorded_fees_sql` returns a query over the ledger's fee postings,
one row per payment, `SELECT transaction_id, fee FROM …` (transaction_id the
payments_transaction id, fee the fee recorded for it in minor units), with its parameters;
the matcher joins it once per run, set-based, so a million rows need no per-row call.
`post_adjustment` posts, in the caller's database transaction, a balanced ledger transaction
of `amount` (gateway − FlowPay, minor units of `currency`) for the item with the idempotency
key `reconciliation:<item public id>` and returns its reference; `verify_ledger` must still
exit 0 after it.
"""

from __future__ import annotations

from core.errors import ErrorCode, FlowPayError


class LedgerUnavailable(FlowPayError):
    """The ledger is not part of this deployment yet: nothing was posted."""

    http_status = 409
    code = ErrorCode.LEDGER_UNAVAILABLE


def recorded_fees_sql(*, gateway: str) -> tuple[str, list] | None:
    """A query of (transaction_id, fee) for the payments of `gateway`: the fee the ledger
    recorded for each. None: fees are not recorded (no fee comparison)."""
    return None


def post_adjustment(*, item, amount: int, currency: str, requested_by, approved_by) -> str:
    """Post the adjustment of a reconciliation item to the ledger; its reference."""
    raise LedgerUnavailable(
        "The ledger is not available in this deployment: a ledger adjustment cannot be posted. "
        "Resolve the item another way, or approve it once the ledger is installed.",
    )
