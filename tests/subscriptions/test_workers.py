"""Real Celery worker processes draining rebill queues against the real broker (Redis, a
private queue per test) and the real PostgreSQL test database: a worker killed with
SIGKILL in the middle of a batch, and two workers draining one queue at once. The gateway
is the simulator, whose records (SimulatorCharge) are what the "PSP" saw."""

import datetime as dt
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from core.actors import Actor
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_set
from payments.models import Transaction
from payments.services.customers import customer_create
from subscriptions.models import Invoice, InvoiceStatus, RebillCharge, RebillJob, RebillJobStatus
from subscriptions.services.plans import plan_create
from subscriptions.services.scheduling import rebill_dispatch, rebill_schedule_due
from subscriptions.services.subscriptions import subscription_create
from subscriptions.tasks import rebill_reap_task
from tests.support.processes import start_celery_worker, stop_process

TEST = Actor.system("test")
LEASE_SECONDS = 3


@pytest.fixture
def private_queue(settings):
    prefix = f"test-{os.getpid()}-{time.monotonic_ns()}-"
    settings.FLOWPAY_REBILL_QUEUE_PREFIX = prefix
    return prefix


def _due_renewals(account, count: int) -> list[Invoice]:
    """`count` monthly subscriptions created 32 days ago (first invoice paid then), whose
    renewal is due now; the scheduler invoices them."""
    with time_machine.travel(timezone.now() - dt.timedelta(days=32), tick=True):
        customer = customer_create(merchant=account.merchant, email="c@example.com", actor=TEST)
        plan = plan_create(merchant=account.merchant, name="Monthly", amount=1500, currency="USD", interval="month", actor=TEST)
        for _ in range(count):
            subscription_create(merchant=account.merchant, customer=customer.public_id, plan=plan.public_id,
                                payment_method="pm_card_visa", actor=TEST)
    rebill_schedule_due()
    renewals = list(Invoice.objects.filter(attempt_count=0))
    assert len(renewals) == count
    return renewals


def _start_worker(prefix: str, name: str, tmp_path: Path, *, batch: int) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
    # The simulator's faults live in the cache namespace the worker shares with this test.
    return start_celery_worker(
        f"{prefix}rebill.monthly", name=name, log=log,
        FLOWPAY_GATEWAYS="simulator", FLOWPAY_REBILL_QUEUE_PREFIX=prefix, FLOWPAY_REBILL_LEASE_SECONDS=str(LEASE_SECONDS),
        FLOWPAY_REBILL_HEARTBEAT_SECONDS="0.5", FLOWPAY_REBILL_BATCH_SIZE=str(batch),
        # The simulator's records are read-after-write consistent: "no record" one second after
        # the killed call means nothing was charged (real gateways get the 15-minute grace).
        FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS="1",
    )


_stop = stop_process


def _wait_for(condition, *, timeout: float, what: str, tmp_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("*.log"))
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.1)


def _paid(invoices) -> int:
    return Invoice.objects.filter(pk__in=[i.pk for i in invoices], status=InvoiceStatus.PAID).count()


def _assert_each_invoice_paid_once(invoices) -> None:
    ids = [i.pk for i in invoices]
    assert set(Invoice.objects.filter(pk__in=ids).values_list("status", flat=True)) == {InvoiceStatus.PAID}
    public_ids = set(Invoice.objects.filter(pk__in=ids).values_list("public_id", flat=True))
    txn_invoice = dict(Transaction.objects.filter(metadata__invoice__in=list(public_ids)).values_list("public_id", "metadata__invoice"))
    gateway_saw = Counter(txn_invoice[c.flowpay_reference] for c in SimulatorCharge.objects.filter(flowpay_reference__in=txn_invoice))
    assert gateway_saw == Counter(dict.fromkeys(public_ids, 1)), "the gateway must see exactly one charge per invoice"
    assert SimulatorCharge.objects.filter(flowpay_reference__in=txn_invoice, call_count__gt=1).count() == 0
    completed = Counter(
        Transaction.objects.filter(metadata__invoice__in=list(public_ids), status="completed").values_list("metadata__invoice", flat=True)
    )
    assert set(completed.values()) == {1}
    assert set(RebillJob.objects.filter(invoice_id__in=ids).values_list("status", flat=True)) == {RebillJobStatus.SUCCEEDED}


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_nothing_and_charges_nothing_twice(merchant_a, private_queue, tmp_path, settings):
    settings.FLOWPAY_REBILL_BATCH_SIZE = 5
    settings.FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS = 1
    invoices = _due_renewals(merchant_a, 10)
    simulator_faults_set(SimulatorFaults(latency_ms=400))  # slow gateway: the kill lands mid-charge
    assert rebill_dispatch() == 2  # batches of 5: two drain messages for the merchant's shard
    doomed = _start_worker(private_queue, "doomed", tmp_path, batch=5)
    try:
        _wait_for(lambda: _paid(invoices) >= 3, timeout=60, what="the first charges", tmp_path=tmp_path)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        _stop(doomed)
    paid_before = _paid(invoices)
    assert paid_before < len(invoices), "the kill should land in the middle of the batch"
    stranded = RebillJob.objects.filter(invoice_id__in=[i.pk for i in invoices], status=RebillJobStatus.LEASED)
    assert stranded.exists(), "the killed worker held leases"

    # its heartbeats stop; once the leases are stale the reaper re-queues and dispatches
    simulator_faults_set(SimulatorFaults(latency_ms=50))
    time.sleep(LEASE_SECONDS + 0.5)
    assert rebill_reap_task() >= 1
    fresh = _start_worker(private_queue, "fresh", tmp_path, batch=5)
    try:
        _wait_for(lambda: _paid(invoices) == len(invoices), timeout=90, what="every invoice paid", tmp_path=tmp_path)
        _wait_for(lambda: not RebillJob.objects.filter(status=RebillJobStatus.LEASED).exists(), timeout=30,
                  what="the jobs to finish", tmp_path=tmp_path)
    finally:
        _stop(fresh)
    _assert_each_invoice_paid_once(invoices)
    assert RebillJob.objects.filter(invoice_id__in=[i.pk for i in invoices], error_count__gte=1).exists()  # the reaped ones


@pytest.mark.django_db(transaction=True)
def test_two_workers_draining_the_same_queue_make_zero_duplicate_charges(merchant_a, private_queue, tmp_path, settings):
    settings.FLOWPAY_REBILL_BATCH_SIZE = 3
    invoices = _due_renewals(merchant_a, 16)
    simulator_faults_set(SimulatorFaults(latency_ms=250))
    assert rebill_dispatch() == 4  # ceil(16 / 3) capped at FLOWPAY_REBILL_MAX_PARALLEL_PER_SHARD
    workers = [_start_worker(private_queue, name, tmp_path, batch=3) for name in ("left", "right")]
    try:
        _wait_for(lambda: _paid(invoices) == len(invoices), timeout=90, what="every invoice paid", tmp_path=tmp_path)
        _wait_for(lambda: not RebillJob.objects.filter(status=RebillJobStatus.LEASED).exists(), timeout=30,
                  what="the jobs to finish", tmp_path=tmp_path)
    finally:
        for worker in workers:
            _stop(worker)
    _assert_each_invoice_paid_once(invoices)
    # both processes charged (owner = worker:<host>:<pid>:<drain>), SKIP LOCKED kept them apart
    pids = {owner.split(":")[2] for owner in RebillCharge.objects.filter(invoice_id__in=[i.pk for i in invoices])
            .values_list("worker", flat=True)}
    assert pids == {str(w.pid) for w in workers}
    assert RebillCharge.objects.filter(invoice_id__in=[i.pk for i in invoices]).count() == len(invoices)
