"""Keeping the overview's hourly rollup (backoffice.dashboard.models) current.

- `dashboard_rollup_refresh` (beat, every FLOWPAY_DASHBOARD_ROLLUP_INTERVAL_SECONDS):
  re-aggregates the recent hours (FLOWPAY_DASHBOARD_ROLLUP_RECENT_HOURS, the current one
  included), where statuses still move, plus every hour that received a row created before
  that window since the last refresh (a late row: an import, a backfill), found through the
  per-kind id watermark. A row committed out of id order is always a recent one (ids and
  created_at are both taken at insert), so the recent window covers what the watermark skips.
- `dashboard_rollup_rebuild` (the nightly settle of the last FLOWPAY_DASHBOARD_ROLLUP_SETTLE_DAYS
  days, and `manage.py rebuild_dashboard_rollup`): re-aggregates a whole range, for statuses
  that change days later (a stuck payment resolved, a refund completing a payment, a
  chargeback's outcome).

Both upsert the buckets of each hour they aggregate and delete that hour's buckets they did
not write (the rows moved to another status), in one transaction that holds the watermark
rows' locks: running either twice, or both at once, leaves the same table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Count, F, Max, Sum, Value, When
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from backoffice.dashboard.models import HourlyRollup, RollupKind, RollupWatermark
from payments.models import Transaction, TransactionStatus
from refunds.models import Chargeback, Refund
from subscriptions.models import RebillJob

HOUR = dt.timedelta(hours=1)
BUCKET_FIELDS = ["hour", "kind", "merchant", "livemode", "currency", "gateway", "status", "code"]


@dataclass(frozen=True)
class RollupSource:
    """Where one kind's rows come from and which of their fields fill a bucket."""

    kind: RollupKind
    model: type
    currency: str
    livemode: str
    amount: str
    gateway: str | None = "gateway"
    captured: str | None = None
    code: object = None  # an expression, or None for no code

    def rows(self):
        return self.model._default_manager.all()


SOURCES: tuple[RollupSource, ...] = (
    RollupSource(
        kind=RollupKind.PAYMENT, model=Transaction, currency="currency", livemode="livemode", amount="amount",
        captured="amount_captured",
        code=Case(When(status=TransactionStatus.FAILED, then=F("failure_code")), default=Value("")),
    ),
    RollupSource(kind=RollupKind.REFUND, model=Refund, currency="currency", livemode="livemode", amount="amount"),
    RollupSource(kind=RollupKind.DISPUTE, model=Chargeback, currency="currency", livemode="livemode", amount="amount"),
    RollupSource(
        kind=RollupKind.REBILL, model=RebillJob, currency="invoice__currency", livemode="subscription__livemode",
        amount="invoice__amount", gateway=None, code=F("outcome"),
    ),
)


@dataclass(frozen=True)
class RollupRefresh:
    hours: int  # hours re-aggregated, summed over the kinds
    buckets: int  # buckets written


def floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def hour_ranges(hours: Iterable[dt.datetime]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Sorted distinct hour starts as [start, end) ranges of consecutive hours."""
    ranges: list[tuple[dt.datetime, dt.datetime]] = []
    for hour in sorted(set(hours)):
        if ranges and ranges[-1][1] == hour:
            ranges[-1] = (ranges[-1][0], hour + HOUR)
        else:
            ranges.append((hour, hour + HOUR))
    return ranges


def _aggregate(source: RollupSource, start: dt.datetime, end: dt.datetime, computed_at: dt.datetime) -> list[HourlyRollup]:
    grouped = (
        source.rows()
        .filter(created_at__gte=start, created_at__lt=end)
        .annotate(
            r_hour=TruncHour("created_at", tzinfo=dt.UTC),
            r_currency=F(source.currency),
            r_livemode=F(source.livemode),
            r_gateway=F(source.gateway) if source.gateway else Value(""),
            r_code=Coalesce(source.code, Value("")) if source.code is not None else Value(""),
        )
        .values("r_hour", "merchant_id", "r_livemode", "r_currency", "r_gateway", "status", "r_code")
        .annotate(
            r_count=Count("id"),
            r_amount=Coalesce(Sum(source.amount), 0),
            r_captured=Coalesce(Sum(source.captured), 0) if source.captured else Value(0),
        )
        .order_by()
    )
    return [
        HourlyRollup(
            hour=row["r_hour"], kind=source.kind, merchant_id=row["merchant_id"], livemode=row["r_livemode"],
            currency=row["r_currency"], gateway=row["r_gateway"] or "", status=row["status"], code=(row["r_code"] or "")[:64],
            count=row["r_count"], amount=row["r_amount"], captured=row["r_captured"], computed_at=computed_at,
        )
        for row in grouped
    ]


def _replace_hours(source: RollupSource, ranges: list[tuple[dt.datetime, dt.datetime]], computed_at: dt.datetime) -> int:
    written = 0
    for start, end in ranges:
        buckets = _aggregate(source, start, end, computed_at)
        HourlyRollup.objects.bulk_create(
            buckets, batch_size=1000, update_conflicts=True, unique_fields=BUCKET_FIELDS,
            update_fields=["count", "amount", "captured", "computed_at"],
        )
        HourlyRollup.objects.filter(kind=source.kind, hour__gte=start, hour__lt=end).exclude(computed_at=computed_at).delete()
        written += len(buckets)
    return written


def _locked_watermarks() -> dict[str, RollupWatermark]:
    for source in SOURCES:
        RollupWatermark.objects.get_or_create(kind=source.kind)
    return {mark.kind: mark for mark in RollupWatermark.objects.select_for_update().order_by("kind")}


@transaction.atomic
def dashboard_rollup_refresh(*, now: dt.datetime | None = None) -> RollupRefresh:
    """Re-aggregate the recent hours and the hours of late rows (see the module docstring)."""
    now = now or timezone.now()
    computed_at = timezone.now()
    recent_start = floor_hour(now) - HOUR * (settings.FLOWPAY_DASHBOARD_ROLLUP_RECENT_HOURS - 1)
    recent = [recent_start + HOUR * n for n in range(settings.FLOWPAY_DASHBOARD_ROLLUP_RECENT_HOURS)]
    marks = _locked_watermarks()
    hours = buckets = 0
    for source in SOURCES:
        mark = marks[source.kind]
        # Read before aggregating: a row committed in between is above the new watermark
        # (seen as late next time) or inside the aggregation (seen now); never lost.
        last_id = source.rows().aggregate(last=Max("id"))["last"] or mark.last_id
        late = (
            source.rows().filter(id__gt=mark.last_id, id__lte=last_id, created_at__lt=recent_start)
            .annotate(r_hour=TruncHour("created_at", tzinfo=dt.UTC)).values_list("r_hour", flat=True).distinct()
        )
        ranges = hour_ranges([*recent, *late])
        buckets += _replace_hours(source, ranges, computed_at)
        hours += sum(int((end - start) / HOUR) for start, end in ranges)
        mark.last_id, mark.refreshed_at = last_id, computed_at
        mark.save(update_fields=["last_id", "refreshed_at"])
    return RollupRefresh(hours=hours, buckets=buckets)


@transaction.atomic
def dashboard_rollup_rebuild(*, start: dt.datetime, end: dt.datetime) -> RollupRefresh:
    """Re-aggregate every hour of [start, end) (widened to whole hours) of every kind."""
    if end <= start:
        raise ValueError("the range to rebuild is empty: its end must be after its start")
    computed_at = timezone.now()
    start, end = floor_hour(start), floor_hour(end - dt.timedelta(microseconds=1)) + HOUR
    _locked_watermarks()
    # One range per day keeps each aggregation's result small on a large table.
    days, cursor = [], start
    while cursor < end:
        days.append((cursor, min(cursor + dt.timedelta(days=1), end)))
        cursor += dt.timedelta(days=1)
    buckets = sum(_replace_hours(source, days, computed_at) for source in SOURCES)
    return RollupRefresh(hours=int((end - start) / HOUR) * len(SOURCES), buckets=buckets)


def dashboard_rollup_lag() -> dt.datetime | None:
    """When the rollup was last refreshed (None: never), shown on the overview."""
    return RollupWatermark.objects.filter(kind=RollupKind.PAYMENT).values_list("refreshed_at", flat=True).first()
