"""Matching a gateway's settlement day against FlowPay's records, in PostgreSQL.

The ladder, per gateway row of day D (rows of D-1 and D+1 are read too, so that a record of D
settled across midnight still matches):
1. the gateway's reference FlowPay stored (the payment's, a capture's, a refund's, a dispute's);
2. FlowPay's id or idempotency key echoed in the gateway's metadata;
3. the amount and currency within FLOWPAY_RECONCILIATION_MATCH_WINDOW_SECONDS, for rows that
   carry no FlowPay id and records that have no gateway reference.
A matched pair is compared field by field (currency, status, amount, then the fee the
ledger recorded, in that order of precedence for its category). A gateway row left over is
`missing_locally`, or `status_mismatch` when it refunds or disputes a payment FlowPay knows;
a second row for one record is `duplicate_at_gateway`; a record of D left over is
`missing_at_gateway` once older than the gateway's settlement delay (until then it is
awaiting settlement, not a discrepancy).

Runs inside the caller's database transaction, after reconciliation.matching.staging has
loaded recon_g; writes the items (reconciliation.models.ReconciliationItem) of the run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from payments.models import PaymentAttempt, Transaction
from reconciliation.matching import queries
from reconciliation.models import Category, ReconciliationItem
from refunds.models import Chargeback, Refund

MAX_WINDOW_ROUNDS = 20


@dataclass(frozen=True)
class DayWindow:
    """Day D of a gateway in a time zone, and the D-1 … D+1 range read from the gateway."""

    gateway: str
    settlement_date: dt.date
    time_zone: str
    day_start: dt.datetime
    day_end: dt.datetime
    fetch_start: dt.datetime
    fetch_end: dt.datetime


def day_window(*, gateway: str, settlement_date: dt.date, time_zone: str) -> DayWindow:
    zone = ZoneInfo(time_zone)
    start = dt.datetime.combine(settlement_date, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(settlement_date + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return DayWindow(
        gateway=gateway, settlement_date=settlement_date, time_zone=time_zone, day_start=start, day_end=end,
        fetch_start=dt.datetime.combine(settlement_date - dt.timedelta(days=1), dt.time.min, tzinfo=zone),
        fetch_end=dt.datetime.combine(settlement_date + dt.timedelta(days=2), dt.time.min, tzinfo=zone),
    )


@dataclass
class MatchOutcome:
    counts: dict[str, int]  # every category: matched pairs, then discrepancies (items)
    new_items: dict[str, int]  # items first found by this run, per category
    awaiting_settlement: int
    gateway_rows: int
    local_records: int
    totals: dict = field(default_factory=dict)

    @property
    def discrepancies(self) -> int:
        return sum(n for category, n in self.counts.items() if category != Category.MATCHED)


def _tables() -> dict[str, str]:
    return {
        "transactions": Transaction._meta.db_table, "refunds": Refund._meta.db_table,
        "chargebacks": Chargeback._meta.db_table, "attempts": PaymentAttempt._meta.db_table,
        "items": ReconciliationItem._meta.db_table,
    }


def match_day(
    cursor, *, window: DayWindow, run_id: int, now: dt.datetime, settlement_delay: dt.timedelta,
    match_window_seconds: int, recorded_fees: tuple[str, dict] | None, gateway_rows: int,
) -> MatchOutcome:
    """Match recon_g (`gateway_rows` rows) against FlowPay's day and upsert the items of run `run_id`."""
    tables = _tables()
    params = {"day_start": window.day_start, "day_end": window.day_end, "gateway": window.gateway,
              "window": match_window_seconds, "due_before": now - settlement_delay, "run_id": run_id, "now": now,
              "settlement_date": window.settlement_date}
    cursor.execute(queries.WORK_TABLE)
    fee_column, fee_join = "NULL::bigint", ""
    if recorded_fees is not None:
        fees_sql, fees_params = recorded_fees
        params.update(fees_params)
        fee_column = "f.fee"
        fee_join = f"LEFT JOIN ({fees_sql}) f ON l.local_type = 'transaction' AND f.transaction_id = l.local_id"
    join = _join_by_reference(cursor, params=params, tables=tables, fee_column=fee_column, fee_join=fee_join)
    cursor.execute(queries.RECORDS_KEPT)
    matched_by_join = join.local_records - cursor.fetchone()[0]
    _settle_leftovers(cursor, params=params, tables=tables, recorded_fees=recorded_fees)
    cursor.execute(queries.CLASSIFY, params)
    cursor.execute(queries.PARENT_STATUS_DIFF)
    cursor.execute(queries.FOUND_COUNTS)
    found = dict(cursor.fetchall())
    cursor.execute(queries.UPSERT_ITEMS.format(items=tables["items"]), params)
    items = cursor.fetchall()
    counts = {str(c): 0 for c in Category}
    counts[Category.MATCHED] = matched_by_join + found.get("matched", 0)
    new_items: Counter[str] = Counter()
    for _item_id, category, inserted in items:
        counts[category] += 1
        if inserted:
            new_items[category] += 1
    totals, local_records = _totals(join.gateway_totals, join.local_totals)
    return MatchOutcome(counts=counts, new_items=dict(new_items), awaiting_settlement=found.get("awaiting", 0),
                        gateway_rows=gateway_rows, local_records=local_records, totals=totals)


@dataclass
class _Join:
    gateway_totals: list[tuple]  # (currency, kind, count, gross, fee) of the rows of D
    local_totals: list[tuple]  # (currency, kind, count, gross) of FlowPay's records of D
    local_records: int


def _join_by_reference(cursor, *, params: dict, tables: dict, fee_column: str, fee_join: str) -> _Join:
    """The reference join (queries.JOIN_BY_REFERENCE): its direct form, and its careful form
    when the direct one joined a record to more than one row or read a partial-capture
    reversal (recon_jx is emptied first: the careful form keeps the same rows and more)."""
    for form in (queries.GATEWAY_ROWS_DIRECT, queries.GATEWAY_ROWS_CAREFUL):
        # The day's rows carry no statistics (they are read through the view's expressions), so
        # the planner guesses millions of groups and sorts them on disk, where one pass
        # hashing FlowPay's day and a handful of groups does: for this statement only.
        cursor.execute(queries.HASHED_PLANS)
        cursor.execute(queries.JOIN_BY_REFERENCE.format(
            gateway_rows=form, fee_column=fee_column, fee_join=fee_join, **tables), params)
        # (side, currency, kind, in_day, count, gross, fee, pairs, local_only)
        rows = cursor.fetchall()
        cursor.execute(queries.DEFAULT_PLANS)
        gateway = [row[1:] for row in rows if row[0] == "gateway"]
        local_totals = [row[1:3] + row[4:6] for row in rows if row[0] == "flowpay"]
        local_records = sum(count for _, _, count, _ in local_totals)
        # Every record appears once in the join's output unless rows shared its reference.
        appearances = sum(pairs + local_only for *_, pairs, local_only in gateway)
        reversals = sum(count for _, kind, _, count, *_ in gateway if kind == "partial_capture_reversal")
        if form is queries.GATEWAY_ROWS_CAREFUL or (appearances == local_records and not reversals):
            break
        cursor.execute("DELETE FROM recon_jx")
    for statement in queries.KEPT_ROWS_DETAILS:
        cursor.execute(statement.format(**tables))
    if form is queries.GATEWAY_ROWS_DIRECT:
        cursor.execute(queries.MARK_DUPLICATED_KEPT)
    # What is left is small (the discrepancies); its statistics let the later passes hash
    # their self-joins instead of nesting loops over it.
    cursor.execute("ANALYZE recon_jx")
    gateway_totals = [(currency, kind, count, gross, fee) for currency, kind, in_day, count, gross, fee, *_ in gateway if in_day]
    return _Join(gateway_totals=gateway_totals, local_totals=local_totals, local_records=local_records)


def _settle_leftovers(cursor, *, params: dict, tables: dict, recorded_fees: tuple[str, dict] | None) -> None:
    cursor.execute(queries.LOCAL_ONLY_SNAPSHOT)
    for _method, statement in queries.LEFTOVER_PASSES:
        cursor.execute(statement.format(**tables), params)
    cursor.execute(queries.MARK_REPEATED_REFERENCES)
    cursor.execute(queries.MARK_EXTRA_ROWS)
    cursor.execute(queries.ABSORB_MATCHED_RECORDS)
    for statement in queries.CONTEXT_ROWS:
        cursor.execute(statement)
    for statement in queries.LATE_ROWS:
        cursor.execute(statement.format(**tables), params)
    for _ in range(MAX_WINDOW_ROUNDS):
        cursor.execute(queries.AMOUNT_WINDOW_PAIRS, params)
        if not cursor.rowcount:
            break
    cursor.execute(queries.PARENT_PAYMENTS.format(**tables), params)
    if recorded_fees is not None:
        cursor.execute(queries.RECORDED_FEES_OF_LATE_PAIRS.format(fees=recorded_fees[0]), params)


def _totals(gateway_rows: list[tuple], local_rows: list[tuple]) -> tuple[dict, int]:
    """{"gateway": {currency: {kind: {"count", "gross", "fee"}}}, "flowpay": {...}, "difference": {currency: n}}:
    the difference is the gateway's gross of what FlowPay records (charges, refunds, disputes)
    minus FlowPay's, per currency."""
    totals: dict = {"gateway": {}, "flowpay": {}, "difference": {}}
    for currency, kind, count, gross, fee in gateway_rows:
        totals["gateway"].setdefault(currency, {})[kind] = {
            "count": count, "gross": int(gross or 0), "fee": int(fee) if fee is not None else None}
        if kind in ("charge", "refund", "dispute", "dispute_reversal"):
            totals["difference"][currency] = totals["difference"].get(currency, 0) + int(gross or 0)
    local_records = 0
    for currency, kind, count, gross in local_rows:
        totals["flowpay"].setdefault(currency, {})[kind] = {"count": count, "gross": int(gross or 0)}
        totals["difference"][currency] = totals["difference"].get(currency, 0) - int(gross or 0)
        local_records += count
    return totals, local_records
