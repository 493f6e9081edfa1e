"""Reconciling one gateway's settlement day: `reconciliation_run`.

Rules:
- One run of a (gateway, day) at a time, whoever starts it (the runbook command, beat, an
  operator): a PostgreSQL advisory lock per (gateway, day), taken without waiting; the other
  run gets ReconciliationInProgress and changes nothing.
- Nothing half-written: the gateway's report is read (spooled to a temporary file) before any
  write; the run, its items and their audit entries are then written in one database
  transaction. A gateway that fails, or a file that is not the gateway's format, leaves no run.
- A dry run does everything in that transaction and rolls it back.
- A day already reconciled is reported from its last run unless `rerun`: a re-run is the
  next attempt, and updates the items it finds again (never duplicates them); an unresolved
  item it no longer finds is cleared, an item cleared earlier that it finds again reopens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.db import DataError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import ErrorCode, FlowPayError, InvalidRequest
from core.observability.metrics import reconciliation_mismatches
from gateways.registry import GATEWAY_CLASSES, gateway_named
from reconciliation.ledger_link import recorded_fees_sql
from reconciliation.matching import staging
from reconciliation.matching.engine import DayWindow, MatchOutcome, day_window, match_day
from reconciliation.models import UNRESOLVED_STATES, ItemState, ReconciliationItem, ReconciliationRun, RunSource

logger = logging.getLogger(__name__)

# pg_try_advisory_lock(class, object): the class of reconciliation locks ("RECO" in ASCII).
LOCK_CLASS = 0x5245434F


class ReconciliationInProgress(FlowPayError):
    http_status = 409
    code = ErrorCode.RECONCILIATION_IN_PROGRESS


@dataclass
class RunReport:
    """What a run found (or, for a day already reconciled, what its last run found)."""

    window: DayWindow
    run: ReconciliationRun | None  # None for a dry run (nothing was kept)
    counts: dict[str, int]
    totals: dict
    awaiting_settlement: int
    gateway_rows: int
    local_records: int
    items: list[ReconciliationItem] = field(default_factory=list)  # up to FLOWPAY_RECONCILIATION_REPORT_ITEMS
    items_total: int = 0
    dry_run: bool = False
    already_reconciled: bool = False

    @property
    def discrepancies(self) -> int:
        return sum(n for category, n in self.counts.items() if category != "matched")


class _DryRunRollback(Exception):
    def __init__(self, report: RunReport):
        self.report = report


def settlement_delay(gateway: str) -> dt.timedelta:
    """FLOWPAY_RECONCILIATION_SETTLEMENT_DELAYS' entry for the gateway (gateway=seconds), else
    FLOWPAY_RECONCILIATION_SETTLEMENT_DELAY_SECONDS."""
    for entry in settings.FLOWPAY_RECONCILIATION_SETTLEMENT_DELAYS:
        name, _, seconds = entry.partition("=")
        if name.strip() == gateway:
            return dt.timedelta(seconds=int(seconds))
    return dt.timedelta(seconds=settings.FLOWPAY_RECONCILIATION_SETTLEMENT_DELAY_SECONDS)


def reconciliation_run(
    *, gateway: str, settlement_date: dt.date, actor: Actor, file: BinaryIO | None = None, file_name: str = "",
    dry_run: bool = False, rerun: bool = False,
) -> RunReport:
    """Reconcile `gateway`'s settlement day (from its API, or from `file` in its own report
    format). Raises gateway errors (nothing written), InvalidSettlementFile,
    ReconciliationInProgress, InvalidRequest."""
    _check_runnable(gateway, file)
    window = day_window(gateway=gateway, settlement_date=settlement_date, time_zone=settings.FLOWPAY_RECONCILIATION_TIME_ZONE)
    with _day_lock(window, wait=False) if not dry_run else _no_lock():
        if not rerun and not dry_run:
            last = ReconciliationRun.objects.filter(gateway=gateway, settlement_date=settlement_date).order_by("-attempt").first()
            if last is not None:
                return report_of_run(last, window=window, already_reconciled=True)
        spool = None if file is not None else staging.spool_records(
            gateway_named(gateway).settlement_records(start=window.fetch_start, end=window.fetch_end))
        try:
            return _run_in_transaction(window=window, actor=actor, spool=spool, file=file, file_name=file_name,
                                       dry_run=dry_run)
        except _DryRunRollback as rolled_back:
            return rolled_back.report
        finally:
            if spool is not None:
                spool.file.close()


def _check_runnable(gateway: str, file: BinaryIO | None) -> None:
    if gateway not in GATEWAY_CLASSES:
        raise InvalidRequest(f"No such gateway: {gateway!r} (known: {', '.join(GATEWAY_CLASSES)}).",
                             code=ErrorCode.UNKNOWN_GATEWAY, param="gateway")
    if connection.vendor != "postgresql":
        raise InvalidRequest("Reconciliation needs PostgreSQL (set DATABASE_URL): it matches in the database.")
    if file is not None and getattr(gateway_named(gateway), "settlement_file_format", None) is None:
        raise InvalidRequest(f"The {gateway} gateway has no report file format: its settlement report is read from "
                             "its API (leave out --file).", param="file")


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


@contextmanager
def _day_lock(window: DayWindow, *, wait: bool) -> Iterator[None]:
    """A session advisory lock on (gateway, day): held across the gateway read and the write."""
    key = int.from_bytes(hashlib.sha256(f"{window.gateway}:{window.settlement_date}".encode()).digest()[:4], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)" if wait else "SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, key])
        if not wait and not cursor.fetchone()[0]:
            raise ReconciliationInProgress(
                f"Another run is reconciling {window.gateway} {window.settlement_date}: this one stopped and changed nothing.")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, key])


def _run_in_transaction(
    *, window: DayWindow, actor: Actor, spool: staging.Spool | None, file: BinaryIO | None, file_name: str, dry_run: bool,
) -> RunReport:
    started = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        staging.create_temp_relations(cursor)
        loaded = None
        if file is not None:
            fmt = gateway_named(window.gateway).settlement_file_format
            loaded = staging.load_file(cursor, file, fmt, name=file_name or "the file")
            gateway_rows = loaded.rows
        else:
            gateway_rows = staging.load_spool(cursor, spool)
        attempt = (ReconciliationRun.objects.filter(gateway=window.gateway, settlement_date=window.settlement_date)
                   .aggregate(last=Max("attempt"))["last"] or 0) + 1
        run = ReconciliationRun.objects.create(
            gateway=window.gateway, settlement_date=window.settlement_date, attempt=attempt,
            source=RunSource.FILE if file is not None else RunSource.API, source_name=file_name[:500],
            time_zone=window.time_zone, window_start=window.day_start, window_end=window.day_end,
            fetched_start=window.fetch_start, fetched_end=window.fetch_end, started_at=started, finished_at=started,
            triggered_by=f"{actor.type}:{actor.id}"[:170],
        )
        now = timezone.now()
        try:
            with transaction.atomic():  # a bad value of a file stops the matcher: back to here, then name it
                outcome = match_day(
                    cursor, window=window, run_id=run.pk, now=now, settlement_delay=settlement_delay(window.gateway),
                    match_window_seconds=settings.FLOWPAY_RECONCILIATION_MATCH_WINDOW_SECONDS,
                    recorded_fees=recorded_fees_sql(gateway=window.gateway), gateway_rows=gateway_rows,
                )
        except DataError as exc:
            if loaded is None:
                raise
            staging.explain_bad_file(cursor, loaded, exc)
        staging.drop_temp_relations(cursor)
        _follow_up_items(run=run, window=window, actor=actor, now=now)
        _finish_run(run, outcome)
        audit_record(actor=actor, action=AuditAction.RECONCILIATION_RUN_COMPLETED, target=run, details={
            "gateway": run.gateway, "date": str(run.settlement_date), "attempt": run.attempt, "source": run.source,
            "counts": run.counts, "dry_run": dry_run,
        })
        report = report_of_run(run, window=window)
        if dry_run:
            report.run, report.dry_run = None, True
            raise _DryRunRollback(report)
        transaction.on_commit(lambda: _count_mismatches(window.gateway, outcome))
    logger.info("reconciliation run finished", extra={"gateway": run.gateway, "run": run.public_id,
                                                      "date": str(run.settlement_date), "discrepancies": run.discrepancies})
    return report


def _finish_run(run: ReconciliationRun, outcome: MatchOutcome) -> None:
    run.counts = outcome.counts
    run.totals = outcome.totals
    run.gateway_rows = outcome.gateway_rows
    run.local_records = outcome.local_records
    run.awaiting_settlement = outcome.awaiting_settlement
    run.discrepancies = outcome.discrepancies
    run.finished_at = timezone.now()
    run.save()


def _follow_up_items(*, run: ReconciliationRun, window: DayWindow, actor: Actor, now: dt.datetime) -> None:
    """Clear the unresolved items of the day this run no longer found; reopen the items a run
    had cleared that this one found again. One audit entry per item, in the run's transaction."""
    stale = (ReconciliationItem.objects.select_for_update()
             .filter(gateway=window.gateway, settlement_date=window.settlement_date, state__in=UNRESOLVED_STATES)
             .exclude(last_run=run).order_by("pk"))
    for item in stale.iterator(chunk_size=500):
        item.clear(run_public_id=run.public_id, now=now)
        item.save()
        audit_record(actor=actor, action=AuditAction.RECONCILIATION_ITEM_CLEARED, target=item,
                     details={"run": run.public_id, "category": item.category})
    found_again = (ReconciliationItem.objects.select_for_update()
                   .filter(last_run=run, state=ItemState.RESOLVED, auto_cleared=True).order_by("pk"))
    for item in found_again.iterator(chunk_size=500):
        item.reopen()
        item.save()
        audit_record(actor=actor, action=AuditAction.RECONCILIATION_ITEM_REOPENED, target=item,
                     details={"run": run.public_id, "category": item.category})


def _count_mismatches(gateway: str, outcome: MatchOutcome) -> None:
    for category, count in outcome.new_items.items():
        reconciliation_mismatches.labels(gateway=gateway, category=category).inc(count)


def report_of_run(run: ReconciliationRun, *, window: DayWindow | None = None, already_reconciled: bool = False) -> RunReport:
    window = window or day_window(gateway=run.gateway, settlement_date=run.settlement_date, time_zone=run.time_zone)
    # Every relation the item's rendering reads, in the one query (not one query per item).
    items = run.items.select_related("merchant", "first_run", "last_run", "resolved_by").order_by("category", "pk")
    limit = settings.FLOWPAY_RECONCILIATION_REPORT_ITEMS
    return RunReport(
        window=window, run=run, counts=dict(run.counts), totals=dict(run.totals),
        awaiting_settlement=run.awaiting_settlement, gateway_rows=run.gateway_rows, local_records=run.local_records,
        items=list(items[:limit]), items_total=run.discrepancies, already_reconciled=already_reconciled,
    )
