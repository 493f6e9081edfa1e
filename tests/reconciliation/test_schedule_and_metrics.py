"""Beat reconciles the previous day of every enabled gateway at 04:00 UTC on the
`reconciliation` queue; a run that fails is retried with backoff; the metrics and their
alerts' inputs come out of /metrics."""

import datetime as dt
import re

import pytest
from celery.exceptions import Retry
from celery.schedules import crontab
from django.conf import settings as django_settings

from core.actors import Actor
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_set
from gateways.simulator.settlements import ExtraCharge, SettlementDiscrepancies, settlement_discrepancies_set
from reconciliation import tasks
from reconciliation.models import ReconciliationRun
from reconciliation.services.runs import reconciliation_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only", "away_from_midnight")]


def test_beat_sends_the_daily_reconciliation_at_4_utc_to_the_reconciliation_queue():
    entry = django_settings.CELERY_BEAT_SCHEDULE["reconciliation-daily"]

    assert entry["task"] == "reconciliation.schedule_daily"
    assert entry["schedule"] == crontab(hour=4, minute=0)
    routes = django_settings.CELERY_TASK_ROUTES
    assert routes["reconciliation.reconcile_day"] == routes["reconciliation.schedule_daily"] == {"queue": "reconciliation"}


def test_the_daily_task_queues_yesterday_for_every_enabled_gateway(settings, monkeypatch):
    settings.FLOWPAY_GATEWAYS = ["simulator", "stripe"]
    queued = []
    monkeypatch.setattr(tasks.reconcile_day_task, "delay", lambda gateway, day: queued.append((gateway, day)))

    tasks.reconcile_previous_day_task()

    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    assert queued == [("simulator", yesterday), ("stripe", yesterday)]


def test_a_day_task_reconciles_once_even_when_delivered_twice(merchant_a, make_payment):
    make_payment(merchant_a, amount=1200)
    day = dt.datetime.now(dt.UTC).date().isoformat()

    first = tasks.reconcile_day_task.apply(args=["simulator", day]).get()
    second = tasks.reconcile_day_task.apply(args=["simulator", day]).get()

    assert first == second == ReconciliationRun.objects.get().public_id


def test_a_run_whose_gateway_is_down_is_retried_with_backoff(merchant_a, make_payment, monkeypatch, settings):
    simulator_faults_set(SimulatorFaults(error_rate=1.0))
    day = dt.datetime.now(dt.UTC).date().isoformat()
    asked = []

    def retry(**kwargs):
        asked.append(kwargs)
        return Retry("retrying", when=kwargs["countdown"])

    monkeypatch.setattr(tasks.reconcile_day_task, "retry", retry)
    result = tasks.reconcile_day_task.apply(args=["simulator", day], retries=3)

    assert result.state == "RETRY"
    (kwargs,) = asked
    assert 8 * 60 * 0.8 <= kwargs["countdown"] <= 8 * 60 * 1.2  # 60 s doubled three times, with jitter
    assert kwargs["max_retries"] == settings.FLOWPAY_RECONCILIATION_MAX_RETRIES
    assert str(kwargs["exc"]) == "simulator: injected outage on settlement_records"
    assert not ReconciliationRun.objects.exists()
    assert max(tasks.retry_countdown(n) for n in range(20)) <= 3600 * 1.2


def scrape(client) -> str:
    return client.get("/metrics").content.decode()


def sample(body: str, name: str, **labels) -> float | None:
    for line in body.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_new_discrepancies_and_show_open_items_and_the_last_success(client, merchant_a, make_payment,
                                                                                 django_capture_on_commit_callbacks):
    make_payment(merchant_a, amount=1200)
    day = dt.datetime.now(dt.UTC).date()
    settlement_discrepancies_set(SettlementDiscrepancies(extra_charges=(
        ExtraCharge(reference="sim_ch_unknown", amount=900, currency="USD", created=dt.datetime.now(dt.UTC)),)))
    before = sample(scrape(client), "reconciliation_mismatches_total", gateway="simulator", category="missing_locally") or 0

    with django_capture_on_commit_callbacks(execute=True):
        tasks.reconcile_day_task.apply(args=["simulator", day.isoformat()])
    with django_capture_on_commit_callbacks(execute=True):  # the same discrepancy again: not a new one
        reconciliation_run(gateway="simulator", settlement_date=day, actor=Actor.system("test"), rerun=True)

    body = scrape(client)
    assert sample(body, "reconciliation_mismatches_total", gateway="simulator", category="missing_locally") == before + 1
    assert sample(body, "reconciliation_open_items", gateway="simulator", category="missing_locally") == 1
    oldest = sample(body, "reconciliation_oldest_open_item_timestamp", gateway="simulator", category="missing_locally")
    finished = sample(body, "reconciliation_last_success_timestamp", gateway="simulator")
    assert abs(oldest - dt.datetime.now(dt.UTC).timestamp()) < 120 and finished >= oldest
    assert re.search(r"^# TYPE reconciliation_mismatches_total counter$", body, re.MULTILINE)
