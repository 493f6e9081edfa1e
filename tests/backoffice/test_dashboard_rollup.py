"""The dashboard's hourly rollup: the incremental refresh gives the same table as a rebuild,
picks up late rows and moved statuses, is idempotent, and runs as a beat task on a real
Celery worker."""

import datetime as dt
import time

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from backoffice.dashboard.models import HourlyRollup, RollupWatermark
from backoffice.dashboard.rollup import dashboard_rollup_rebuild, dashboard_rollup_refresh, hour_ranges
from payments.models import Transaction
from tests.support.dashboard import SPECS, SYSTEM, seed_specs
from tests.support.processes import start_celery_worker, stop_process

pytestmark = pytest.mark.django_db


def table() -> set[tuple]:
    return set(HourlyRollup.objects.values_list("hour", "kind", "merchant_id", "livemode", "currency", "gateway", "status",
                                                "code", "count", "amount", "captured"))


def raw_payment_buckets() -> set[tuple]:
    """The payment buckets straight from SQL over the transactions table."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC'), merchant_id, livemode, currency, gateway, status,
                   CASE WHEN status = 'failed' THEN failure_code ELSE '' END, count(*), sum(amount), sum(amount_captured)
            FROM transactions GROUP BY 1, 2, 3, 4, 5, 6, 7""")
        return {(hour.replace(tzinfo=dt.UTC), *rest) for hour, *rest in cursor.fetchall()}


def rollup_payment_buckets() -> set[tuple]:
    return set(HourlyRollup.objects.filter(kind="payment").values_list(
        "hour", "merchant_id", "livemode", "currency", "gateway", "status", "code", "count", "amount", "captured"))


@pytest.fixture
def seeded(merchant_a, two_gateways):
    return seed_specs(merchant_a.merchant)


def test_hour_ranges_merge_consecutive_hours():
    h = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    assert hour_ranges([h + 3 * hour, h, h + hour, h + hour]) == [(h, h + 2 * hour), (h + 3 * hour, h + 4 * hour)]


def test_rebuild_equals_the_raw_aggregate_and_the_incremental_refresh(seeded):
    # given the seeded rows, aggregated once by a rebuild of the last 30 days
    now = timezone.now()
    dashboard_rollup_rebuild(start=now - dt.timedelta(days=30), end=now + dt.timedelta(hours=1))
    rebuilt = table()

    # then the payment buckets are the raw SQL aggregate of the transactions table
    assert rollup_payment_buckets() == raw_payment_buckets()
    assert {(row[1], row[6]) for row in rebuilt} >= {("refund", "succeeded"), ("dispute", "needs_response")}

    # when the table is emptied and rebuilt by the incremental refresh alone (first run:
    # every row is above the watermark, so every hour with rows is a late hour)
    HourlyRollup.objects.all().delete()
    RollupWatermark.objects.all().delete()
    dashboard_rollup_refresh()

    # then it is the same table
    assert table() == rebuilt


def test_refresh_twice_changes_nothing(seeded):
    dashboard_rollup_refresh()
    first = table()
    result = dashboard_rollup_refresh()
    assert table() == first and result.buckets > 0


def test_a_late_row_outside_the_recent_window_is_picked_up(merchant_a, seeded):
    dashboard_rollup_refresh()
    before = HourlyRollup.objects.filter(kind="payment").count()

    # when a payment is created now but dated 20 days back (an import)
    from payments.services.transactions import PaymentInput, transaction_create

    late = transaction_create(merchant=merchant_a.merchant, payment=PaymentInput(amount=777, currency="USD", payment_method="pm_card_visa"),
                              actor=SYSTEM)
    twenty_days_ago = timezone.now().replace(minute=5) - dt.timedelta(days=20)
    Transaction.objects.filter(pk=late.pk).update(created_at=twenty_days_ago)
    dashboard_rollup_refresh()

    # then its hour has a bucket, and the rollup is still the raw aggregate
    bucket = HourlyRollup.objects.get(kind="payment", hour=twenty_days_ago.replace(minute=0, second=0, microsecond=0))
    assert (bucket.count, bucket.amount, bucket.captured) == (1, 777, 777)
    assert HourlyRollup.objects.filter(kind="payment").count() == before + 1
    assert rollup_payment_buckets() == raw_payment_buckets()


def test_a_status_that_moves_in_the_recent_window_moves_its_bucket(merchant_a, two_gateways):
    from payments.services.transactions import PaymentInput, transaction_create
    from refunds.services.create import refund_create

    txn = transaction_create(merchant=merchant_a.merchant, payment=PaymentInput(amount=5000, currency="USD", payment_method="pm_card_visa"),
                             actor=SYSTEM)
    dashboard_rollup_refresh()
    assert set(HourlyRollup.objects.filter(kind="payment").values_list("status", "count")) == {("completed", 1)}

    # when the payment is fully refunded, then the next refresh has no completed bucket left
    refund_create(transaction_id=txn.pk, amount=5000, reason="test", refund_to_original_method=False, actor=SYSTEM)
    dashboard_rollup_refresh()
    assert set(HourlyRollup.objects.filter(kind="payment").values_list("status", "count", "captured")) == {("refunded", 1, 5000)}
    assert set(HourlyRollup.objects.filter(kind="refund").values_list("status", "amount")) == {("succeeded", 5000)}


def test_the_settle_rebuild_catches_a_change_older_than_the_recent_window(seeded):
    dashboard_rollup_refresh()
    # a payment of 8 days ago is refunded in full today: its status moves outside the window
    from refunds.services.create import refund_create

    old = Transaction.objects.get(amount=50_000)
    refund_create(transaction_id=old.pk, amount=50_000, reason="late", refund_to_original_method=False, actor=SYSTEM)
    dashboard_rollup_refresh()
    assert rollup_payment_buckets() != raw_payment_buckets()  # the incremental refresh does not look back that far
    call_command("rebuild_dashboard_rollup", "--days", "31")
    assert rollup_payment_buckets() == raw_payment_buckets()


def test_rebuild_command_refuses_bad_input():
    from django.core.management.base import CommandError

    for args in ([], ["--from", "2026-13-01"], ["--from", "2026-02-02", "--to", "2026-02-01"], ["--days", "0"],
                 ["--days", "3", "--from", "2026-01-01"]):
        with pytest.raises(CommandError):
            call_command("rebuild_dashboard_rollup", *args)
    assert not HourlyRollup.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_refreshes_the_rollup_on_a_real_worker(merchant_a, two_gateways):
    from celery import current_app

    seed_specs(merchant_a.merchant, SPECS[:3])
    worker = start_celery_worker("dashboard-test")
    try:
        current_app.send_task("dashboard.rollup_refresh", queue="dashboard-test")
        deadline = timezone.now() + dt.timedelta(seconds=60)
        while not RollupWatermark.objects.filter(refreshed_at__isnull=False).exists() and timezone.now() < deadline:
            time.sleep(0.3)
    finally:
        stop_process(worker)
    assert rollup_payment_buckets() == raw_payment_buckets()
    assert HourlyRollup.objects.filter(kind="payment").exists()


def test_beat_refreshes_every_minute_and_settles_nightly(settings):
    from celery.schedules import crontab

    refresh = settings.CELERY_BEAT_SCHEDULE["dashboard-rollup-refresh"]
    settle = settings.CELERY_BEAT_SCHEDULE["dashboard-rollup-settle"]
    assert refresh["task"] == "dashboard.rollup_refresh" and refresh["schedule"] == dt.timedelta(seconds=60)
    assert settle["task"] == "dashboard.rollup_settle" and settle["schedule"] == crontab(minute=30, hour=3)
