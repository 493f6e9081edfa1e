"""Two runs of the same gateway and day at once, each in its own thread and database
connection: one proceeds, the other says so and changes nothing (a PostgreSQL advisory lock
per gateway and day). Runs of other days are not held up."""

import datetime as dt
import threading

import pytest
from django.db import connection

from core.actors import Actor
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_set
from gateways.simulator.settlements import SettlementDiscrepancies, settlement_discrepancies_set
from reconciliation.models import ReconciliationItem, ReconciliationRun
from reconciliation.services.runs import ReconciliationInProgress, reconciliation_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("simulator_only", "away_from_midnight")]


def run_in_thread(day: dt.date, outcomes: list, started: threading.Event | None = None) -> threading.Thread:
    def target():
        try:
            if started is not None:
                started.set()
            report = reconciliation_run(gateway="simulator", settlement_date=day, actor=Actor.system("test"), rerun=True)
            outcomes.append(("ran", report.run.public_id))
        except ReconciliationInProgress as exc:
            outcomes.append(("refused", exc.message))
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_two_runs_of_one_day_at_once_one_proceeds_the_other_says_so(merchant_a, make_payment):
    txn = make_payment(merchant_a, amount=1999)
    settlement_discrepancies_set(SettlementDiscrepancies(missing=(txn.gateway_reference,)))
    simulator_faults_set(SimulatorFaults(latency_ms=1500))  # the gateway read is slow: the first run holds the day
    day = dt.datetime.now(dt.UTC).date()
    outcomes: list = []
    first_started = threading.Event()

    first = run_in_thread(day, outcomes, first_started)
    first_started.wait(5)
    threading.Event().wait(0.5)
    second = run_in_thread(day, outcomes)
    for thread in (first, second):
        thread.join(30)

    assert sorted(kind for kind, _ in outcomes) == ["ran", "refused"]
    refused = next(message for kind, message in outcomes if kind == "refused")
    assert f"Another run is reconciling simulator {day}" in refused
    assert ReconciliationRun.objects.count() == 1
    assert ReconciliationItem.objects.count() == 1  # written once


def test_overlapping_runs_of_different_days_both_proceed(merchant_a, make_payment):
    make_payment(merchant_a, amount=1000)
    simulator_faults_set(SimulatorFaults(latency_ms=800))
    today = dt.datetime.now(dt.UTC).date()
    outcomes: list = []

    threads = [run_in_thread(today, outcomes), run_in_thread(today - dt.timedelta(days=1), outcomes)]
    for thread in threads:
        thread.join(30)

    assert [kind for kind, _ in outcomes] == ["ran", "ran"]
    assert set(ReconciliationRun.objects.values_list("settlement_date", flat=True)) == {today, today - dt.timedelta(days=1)}
    assert SimulatorCharge.objects.count() == 1
