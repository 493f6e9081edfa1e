"""The overview's figures: read from the hourly rollup (backoffice.dashboard.models) for a
period, currency and mode, plus a few small indexed queries for what is open now (disputes,
reconciliation items, dead deliveries, subscriptions). Never a scan of the transactions.

Definitions (docs/operations.md, "Dashboard: overview"):
- gross volume: captured amounts of the payments created in the period;
- refunds: succeeded refunds created in the period; disputes: chargebacks opened in it;
- net volume: gross − refunds − disputes;
- success rate: successful payments / (successful + failed), where successful means
  authorized or captured (completed, partially or fully refunded since);
- refund rate: refunds / gross; dispute rate: disputes opened / successful payments;
- MRR: the monthly equivalent of the plans of active subscriptions (now, not per period).

Every selector returns plain values, so its reads may go to the read replica
(DATABASE_REPLICA_URL) when one is configured.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

from django.db.models import Count, Min, Sum
from django.db.models.functions import TruncDay

from backoffice.dashboard.models import HourlyRollup, RollupKind
from core.db_routing import reads_from_replica
from payments.models import TransactionStatus
from reconciliation.models import UNRESOLVED_STATES, ReconciliationItem
from refunds.models import OPEN_CHARGEBACK_STATES, Chargeback, RefundStatus
from subscriptions.models import Interval, RebillJobStatus, Subscription, SubscriptionStatus
from webhooks.models import WebhookDelivery

S = TransactionStatus
SUCCESSFUL_STATES = [S.AUTHORIZED, S.COMPLETED, S.PARTIALLY_REFUNDED, S.REFUNDED]
CAPTURED_STATES = [S.COMPLETED, S.PARTIALLY_REFUNDED, S.REFUNDED]
FAILED_REBILL_STATES = [RebillJobStatus.FAILED, RebillJobStatus.DEAD]
# A plan's amount per interval as a monthly amount (a year is 12 months, 365 days, 52 weeks).
MONTHLY_FACTOR = {
    Interval.DAY: Fraction(365, 12),
    Interval.WEEK: Fraction(52, 12),
    Interval.MONTH: Fraction(1),
    Interval.YEAR: Fraction(1, 12),
}


@dataclass(frozen=True)
class Period:
    key: str  # today | 7d | 30d | custom
    start: dt.datetime  # UTC midnight, inclusive
    end: dt.datetime  # UTC midnight, exclusive

    @property
    def previous(self) -> Period:
        return Period(key=self.key, start=self.start - (self.end - self.start), end=self.start)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def first_day(self) -> dt.date:
        return self.start.date()

    @property
    def last_day(self) -> dt.date:
        return (self.end - dt.timedelta(days=1)).date()


PERIOD_DAYS = {"today": 1, "7d": 7, "30d": 30}
MAX_CUSTOM_DAYS = 366


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def period_from(*, key: str, today: dt.date, first: str = "", last: str = "") -> Period:
    """The period named by the picker; ValueError (with a message for the page) otherwise.
    Fixed periods end today (included); a custom one runs from `first` to `last` inclusive."""
    if key in PERIOD_DAYS:
        return Period(key=key, start=_midnight(today - dt.timedelta(days=PERIOD_DAYS[key] - 1)), end=_midnight(today + dt.timedelta(days=1)))
    if key != "custom":
        raise ValueError(f"Unknown period '{key[:20]}': choose today, 7d, 30d or custom.")
    try:
        start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    except ValueError:
        raise ValueError("A custom period needs a start and an end date (YYYY-MM-DD).") from None
    if end < start:
        raise ValueError("The custom period ends before it starts.")
    if (end - start).days + 1 > MAX_CUSTOM_DAYS:
        raise ValueError(f"A custom period is at most {MAX_CUSTOM_DAYS} days.")
    return Period(key="custom", start=_midnight(start), end=_midnight(end + dt.timedelta(days=1)))


@dataclass
class GatewayRate:
    successful: int = 0
    failed: int = 0

    @property
    def rate(self) -> Fraction | None:
        decided = self.successful + self.failed
        return Fraction(self.successful, decided) if decided else None


@dataclass
class PeriodFigures:
    gross: int = 0
    refunds: int = 0
    refund_count: int = 0
    disputes: int = 0
    dispute_count: int = 0
    payments: int = 0  # every payment created in the period
    successful: int = 0
    failed: int = 0
    captured_count: int = 0
    failed_rebills: int = 0
    per_gateway: dict[str, GatewayRate] = field(default_factory=dict)

    @property
    def net(self) -> int:
        return self.gross - self.refunds - self.disputes

    @property
    def success_rate(self) -> Fraction | None:
        return GatewayRate(self.successful, self.failed).rate

    @property
    def refund_rate(self) -> Fraction | None:
        return Fraction(self.refunds, self.gross) if self.gross else None

    @property
    def dispute_rate(self) -> Fraction | None:
        return Fraction(self.dispute_count, self.successful) if self.successful else None

    @property
    def average_payment(self) -> int | None:
        """Gross over the captured payments, in minor units (rounded half up)."""
        return (self.gross * 2 + self.captured_count) // (self.captured_count * 2) if self.captured_count else None


def _buckets(*, period: Period, currency: str, livemode: bool):
    return HourlyRollup.objects.filter(livemode=livemode, currency=currency, hour__gte=period.start, hour__lt=period.end)


@reads_from_replica
def period_figures(*, period: Period, currency: str, livemode: bool) -> PeriodFigures:
    figures = PeriodFigures()
    grouped = (
        _buckets(period=period, currency=currency, livemode=livemode)
        .values("kind", "gateway", "status")
        .annotate(n=Sum("count"), amount=Sum("amount"), captured=Sum("captured"))
        .order_by()
    )
    for row in grouped:
        kind, status, n = row["kind"], row["status"], row["n"]
        if kind == RollupKind.PAYMENT:
            figures.payments += n
            figures.gross += row["captured"]
            rate = figures.per_gateway.setdefault(row["gateway"] or "(none)", GatewayRate())
            if status in SUCCESSFUL_STATES:
                figures.successful += n
                rate.successful += n
            elif status == S.FAILED:
                figures.failed += n
                rate.failed += n
            if status in CAPTURED_STATES:
                figures.captured_count += n
        elif kind == RollupKind.REFUND and status == RefundStatus.SUCCEEDED:
            figures.refunds += row["amount"]
            figures.refund_count += n
        elif kind == RollupKind.DISPUTE:
            figures.disputes += row["amount"]
            figures.dispute_count += n
        elif kind == RollupKind.REBILL and status in FAILED_REBILL_STATES:
            figures.failed_rebills += n
    figures.per_gateway = {gateway: rate for gateway, rate in sorted(figures.per_gateway.items()) if rate.rate is not None}
    return figures


@reads_from_replica
def rollup_currencies(*, livemode: bool) -> list[str]:
    return sorted(HourlyRollup.objects.filter(livemode=livemode).values_list("currency", flat=True).distinct().order_by())


# --- charts ---------------------------------------------------------------------------------
@reads_from_replica
def volume_per_day(*, period: Period, currency: str, livemode: bool) -> dict[dt.date, int]:
    """Gross (captured) volume of each day of the period, every day present."""
    days = {period.first_day + dt.timedelta(days=n): 0 for n in range(period.days)}
    rows = (
        _buckets(period=period, currency=currency, livemode=livemode).filter(kind=RollupKind.PAYMENT)
        .annotate(day=TruncDay("hour", tzinfo=dt.UTC)).values("day").annotate(total=Sum("captured")).order_by()
    )
    for row in rows:
        days[row["day"].date()] = row["total"]
    return days


@reads_from_replica
def success_rate_per_gateway(*, period: Period, currency: str, livemode: bool, hourly: bool) -> dict[str, dict[dt.datetime, GatewayRate]]:
    """Per gateway, successful and failed payments per hour (or per day for long periods)."""
    query = _buckets(period=period, currency=currency, livemode=livemode).filter(
        kind=RollupKind.PAYMENT, status__in=[*SUCCESSFUL_STATES, S.FAILED])
    if not hourly:
        query = query.annotate(slot=TruncDay("hour", tzinfo=dt.UTC))
    rows = query.values("gateway", "slot" if not hourly else "hour", "status").annotate(n=Sum("count")).order_by()
    series: dict[str, dict[dt.datetime, GatewayRate]] = defaultdict(dict)
    for row in rows:
        slot = row["hour"] if hourly else row["slot"]
        rate = series[row["gateway"] or "(none)"].setdefault(slot, GatewayRate())
        if row["status"] == S.FAILED:
            rate.failed += row["n"]
        else:
            rate.successful += row["n"]
    return dict(sorted(series.items()))


@reads_from_replica
def declines_by_code(*, period: Period, currency: str, livemode: bool, limit: int = 10) -> list[tuple[str, int]]:
    rows = (
        _buckets(period=period, currency=currency, livemode=livemode).filter(kind=RollupKind.PAYMENT, status=S.FAILED)
        .values("code").annotate(n=Sum("count")).order_by("-n", "code")[:limit]
    )
    return [(row["code"] or "(no code)", row["n"]) for row in rows]


@reads_from_replica
def rebill_outcomes(*, period: Period, currency: str, livemode: bool) -> list[tuple[str, int]]:
    rows = (
        _buckets(period=period, currency=currency, livemode=livemode).filter(kind=RollupKind.REBILL)
        .values("status").annotate(n=Sum("count")).order_by("status")
    )
    return [(row["status"], row["n"]) for row in rows]


# --- now: small indexed queries --------------------------------------------------------------
@dataclass(frozen=True)
class OpenFigures:
    mrr: int
    active_subscriptions: int
    open_disputes: int
    nearest_evidence_due: dt.datetime | None
    open_reconciliation_items: int
    dead_deliveries: int


@reads_from_replica
def open_figures(*, currency: str, livemode: bool) -> OpenFigures:
    subscriptions = (
        Subscription.objects.filter(status=SubscriptionStatus.ACTIVE, livemode=livemode, plan__currency=currency)
        .values("plan__interval", "plan__interval_count").annotate(total=Sum("plan__amount"), n=Count("id")).order_by()
    )
    mrr, active = Fraction(0), 0
    for row in subscriptions:
        mrr += row["total"] * MONTHLY_FACTOR[row["plan__interval"]] / max(row["plan__interval_count"], 1)
        active += row["n"]
    disputes = Chargeback.objects.filter(status__in=OPEN_CHARGEBACK_STATES, livemode=livemode, currency=currency).aggregate(
        n=Count("id"), due=Min("evidence_due_by"))
    return OpenFigures(
        mrr=round(mrr),
        active_subscriptions=active,
        open_disputes=disputes["n"],
        nearest_evidence_due=disputes["due"],
        open_reconciliation_items=ReconciliationItem.objects.filter(state__in=UNRESOLVED_STATES).count(),
        dead_deliveries=WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DEAD).count(),
    )
