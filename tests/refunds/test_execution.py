"""Refund execution: the `refunds.execute` task, gateway failures and retries, failed-refund
recovery (list_failed_refunds, retry_failed_refunds), and never refunding twice."""

import datetime as dt
import json
import os
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.models import AuditEntry
from core.actors import Actor
from gateways.base import GatewayRequestError, GatewayTimeout, GatewayUnavailableError
from refunds.models import Refund
from refunds.services.create import refund_create
from refunds.services.execution import refunds_requeue_stalled
from refunds.tasks import REFUND_MAX_RETRIES, refund_execute_task
from tests.support.processes import start_celery_worker, stop_process
from tests.support.refunds import charge_of, fail_gateway_refunds, run_queued, simulator_refund_records

pytestmark = pytest.mark.django_db

MERCHANT = "api"


def merchant_actor(account) -> Actor:
    return Actor(type=MERCHANT, id="test-key", merchant_id=account.merchant.pk)


@pytest.fixture
def refund_of(merchant_a, make_payment, queued_refunds, django_capture_on_commit_callbacks):
    """A completed 20.00 USD payment and a pending 5.00 refund of it, queued (not run yet)."""

    def make(amount: int = 500, payment_amount: int = 2000) -> Refund:
        txn = make_payment(merchant_a, amount=payment_amount)
        with django_capture_on_commit_callbacks(execute=True):
            refund = refund_create(transaction_id=txn.pk, amount=amount, reason="Customer service request",
                                   actor=merchant_actor(merchant_a))
        return refund

    return make


@pytest.fixture
def breaker_off(settings):
    """These tests fail the gateway on purpose: keep the circuit breaker out of the way."""
    settings.FLOWPAY_BREAKER_FAILURE_THRESHOLD = 10_000


def run_task(refund: Refund, *, retries: int = 0):
    return refund_execute_task.apply(args=[refund.pk], retries=retries)


def command(name: str, *args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(name, *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code), out.getvalue()
    return 0, out.getvalue()


def latency_count(outcome: str) -> float:
    return REGISTRY.get_sample_value("refund_processing_latency_count", {"gateway": "simulator", "outcome": outcome}) or 0


def test_gateway_outage_is_retried_with_backoff_then_left_failed_and_listed(refund_of, queued_refunds, monkeypatch,
                                                                            breaker_off):
    # given a queued refund and a gateway that is down
    refund = refund_of(amount=500)
    queued_refunds.clear()
    calls = fail_gateway_refunds(monkeypatch, lambda: GatewayUnavailableError("simulator down"))
    failed_before = latency_count("failed")

    # when the worker runs it (eagerly here: Celery runs the retries at once, ignoring the countdown)
    result = run_task(refund)

    # then every attempt was scheduled with a growing backoff before the refund was given up
    assert result.state == "SUCCESS" and result.result == "failed"
    scheduled = [dt.datetime.fromisoformat(e.details["next_retry_at"]) - e.occurred_at for e in
                 AuditEntry.objects.filter(action="refund.attempt_failed", object_id=refund.public_id).order_by("id")]
    assert len(scheduled) == REFUND_MAX_RETRIES
    assert scheduled[0] < dt.timedelta(seconds=6) and scheduled[-1] > dt.timedelta(seconds=80)
    refund.refresh_from_db()
    assert refund.attempts == REFUND_MAX_RETRIES + 1 == calls["total"]

    # then the refund is failed with the reason, its amount refundable again, and nothing refunded
    refund.refresh_from_db()
    txn = refund.transaction
    assert (refund.status, refund.failure_code, refund.failure_message) == ("failed", "gateway_unavailable", "simulator down")
    assert not refund.holds_reservation and refund.next_retry_at is None
    assert (txn.status, txn.amount_refunded, txn.amount_refund_reserved) == ("completed", 0, 0)
    assert charge_of(txn).amount_refunded == 0
    assert latency_count("failed") == failed_before + 1
    actions = list(AuditEntry.objects.filter(object_id=refund.public_id).order_by("id").values_list("action", "result"))
    assert actions == [("refund.create", "success"), ("refund.processing", "success"),
                       *[("refund.attempt_failed", "failure")] * REFUND_MAX_RETRIES, ("refund.failed", "failure")]

    # and list_failed_refunds --last-24h shows it, as a table and as JSON, and exits non-zero
    code, table = command("list_failed_refunds", "--last-24h")
    assert code == 1
    lines = table.splitlines()
    assert "Failed refunds: 1" in lines and any(line.startswith("PROBLEM: 1 failed refund(s)") for line in lines)
    header = next(line for line in lines if line.startswith("REFUND"))
    assert header.split()[:3] == ["REFUND", "TRANSACTION", "AMOUNT"]
    assert refund.public_id in table and "gateway_unavailable" in table and "5.00 USD" in table
    code, raw = command("list_failed_refunds", "--last-24h", "--format", "json")
    data = json.loads(raw)
    assert code == 1 and data["ok"] is False and data["failedTotal"] == 1 and len(data["refunds"]) == 1
    assert data["refunds"][0]["id"] == refund.public_id and data["refunds"][0]["failureCode"] == "gateway_unavailable"
    assert data["refunds"][0]["amount"] == 500 and data["refunds"][0]["transaction"] == txn.public_id


def test_retry_after_an_outage_refunds_once(refund_of, queued_refunds, monkeypatch, django_capture_on_commit_callbacks):
    # given a refund left failed by an outage (nothing happened at the gateway)
    refund = refund_of(amount=500)
    queued_refunds.clear()
    fail_gateway_refunds(monkeypatch, lambda: GatewayUnavailableError("simulator down"), times=1)
    run_task(refund, retries=REFUND_MAX_RETRIES)
    refund.refresh_from_db()
    assert refund.status == "failed"

    # when an operator retries the failed refunds (the gateway is back)
    with django_capture_on_commit_callbacks(execute=True):
        code, out = command("retry_failed_refunds", "--last-24h")
    assert code == 0 and refund.public_id in out and "yes" in out
    assert queued_refunds == [refund.pk]
    run_queued(queued_refunds)

    # then it succeeded, under a fresh idempotency key, and the customer was refunded once
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.idempotency_key.endswith(":refund:2")
    txn = refund.transaction
    assert (txn.status, txn.amount_refunded, txn.amount_refund_reserved) == ("partially_refunded", 500, 500)
    assert charge_of(txn).amount_refunded == 500 and simulator_refund_records(txn).count() == 1
    assert AuditEntry.objects.filter(action="refund.retry", object_id=refund.public_id, actor_type="system").exists()
    assert command("list_failed_refunds", "--last-24h")[0] == 0


def test_an_open_circuit_defers_the_refund_without_calling_the_gateway(refund_of, queued_refunds, monkeypatch):
    from gateways.breaker import breaker_for

    refund = refund_of(amount=500)
    queued_refunds.clear()
    calls = fail_gateway_refunds(monkeypatch, lambda: GatewayUnavailableError("never reached"))
    breaker = breaker_for("simulator")
    while breaker.allow_request():
        breaker.record_failure()

    run_task(refund, retries=REFUND_MAX_RETRIES)

    refund.refresh_from_db()
    assert calls["total"] == 0
    assert (refund.status, refund.failure_code) == ("failed", "gateway_unavailable")
    assert "circuit breaker is open" in refund.failure_message and not refund.holds_reservation


def test_the_task_run_twice_refunds_once(refund_of, queued_refunds, monkeypatch):
    from gateways.simulator.adapter import SimulatorGateway

    refund = refund_of(amount=700)
    queued_refunds.clear()
    calls = []
    original = SimulatorGateway.refund
    monkeypatch.setattr(SimulatorGateway, "refund", lambda self, **kw: calls.append(kw) or original(self, **kw))

    run_task(refund)
    run_task(refund)  # a redelivered message (acks_late) or a duplicate enqueue

    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.attempts == 1 and len(calls) == 1
    assert calls[0]["idempotency_key"] == f"flowpay:{refund.public_id}:refund"
    assert charge_of(refund.transaction).amount_refunded == 700


def test_a_crash_after_the_gateway_refunded_is_recovered_without_refunding_twice(refund_of, queued_refunds, monkeypatch):
    # given a worker that dies after the gateway refunded, before recording it
    from refunds.services import execution

    refund = refund_of(amount=600)
    queued_refunds.clear()
    original = execution.refund_record_outcome

    def crash(**kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(execution, "refund_record_outcome", crash)
    with pytest.raises(RuntimeError):
        refund_execute_task.apply(args=[refund.pk], throw=True)
    refund.refresh_from_db()
    assert refund.status == "processing"
    assert charge_of(refund.transaction).amount_refunded == 600  # the PSP refunded

    # when the message is redelivered to another worker
    monkeypatch.setattr(execution, "refund_record_outcome", original)
    run_task(refund)

    # then the same idempotency key finds the first refund at the gateway: refunded once
    refund.refresh_from_db()
    txn = refund.transaction
    assert refund.status == "succeeded" and refund.attempts == 2
    assert charge_of(txn).amount_refunded == 600 and txn.amount_refunded == 600
    record = simulator_refund_records(txn).get()
    assert record.call_count == 2 and record.reference == refund.gateway_reference


def test_a_timeout_keeps_the_reservation_and_the_retry_resends_the_same_key(refund_of, queued_refunds, monkeypatch,
                                                                           django_capture_on_commit_callbacks, breaker_off):
    # given a gateway that refunds but whose answer is lost, on every automatic attempt
    from gateways.simulator.adapter import SimulatorGateway

    refund = refund_of(amount=800, payment_amount=1000)
    queued_refunds.clear()
    original = SimulatorGateway.refund

    def refunds_then_times_out(self, **kwargs):
        original(self, **kwargs)
        raise GatewayTimeout("response lost")

    monkeypatch.setattr(SimulatorGateway, "refund", refunds_then_times_out)
    run_task(refund)

    # then it is failed with an unknown outcome and still reserved: nobody can refund the 8.00 again
    refund.refresh_from_db()
    txn = refund.transaction
    assert (refund.status, refund.failure_code, refund.outcome_unknown, refund.holds_reservation) == (
        "failed", "gateway_timeout", True, True)
    assert txn.amount_refund_reserved == 800 and txn.amount_refundable == 200
    with pytest.raises(Exception, match="refundable"):
        refund_create(transaction_id=txn.pk, amount=300, reason="", actor=Actor(type=MERCHANT, id="k", merchant_id=txn.merchant_id))

    # when it is retried once the gateway answers again
    monkeypatch.setattr(SimulatorGateway, "refund", original)
    with django_capture_on_commit_callbacks(execute=True):
        code, _ = command("list_failed_refunds", "--retry")
    assert code == 0
    run_queued(queued_refunds)

    # then the same key is re-sent, the gateway's first refund is found, and money moved once
    refund.refresh_from_db()
    txn.refresh_from_db()
    assert refund.status == "succeeded" and refund.idempotency_key == f"flowpay:{refund.public_id}:refund"
    assert charge_of(txn).amount_refunded == 800 == txn.amount_refunded
    assert simulator_refund_records(txn).get().call_count == REFUND_MAX_RETRIES + 2


def test_a_refusal_by_the_gateway_fails_at_once_without_retries(refund_of, queued_refunds, monkeypatch):
    refund = refund_of(amount=500)
    queued_refunds.clear()
    calls = fail_gateway_refunds(monkeypatch, lambda: GatewayRequestError("charge is disputed", code="charge_disputed"))

    result = run_task(refund)

    refund.refresh_from_db()
    assert result.state == "SUCCESS" and calls["total"] == 1
    assert (refund.status, refund.failure_code, refund.holds_reservation) == ("failed", "charge_disputed", False)
    assert refund.transaction.amount_refund_reserved == 0


def test_list_failed_refunds_without_failures_exits_zero_and_honours_the_window(refund_of, queued_refunds, monkeypatch):
    code, out = command("list_failed_refunds", "--last-24h")
    assert code == 0 and "OK: no failed refunds in the window." in out
    refund = refund_of(amount=500)
    queued_refunds.clear()
    fail_gateway_refunds(monkeypatch, lambda: GatewayUnavailableError("down"))
    run_task(refund, retries=REFUND_MAX_RETRIES)
    Refund.objects.filter(pk=refund.pk).update(failed_at=timezone.now() - dt.timedelta(days=2))

    assert command("list_failed_refunds", "--last-24h")[0] == 0
    assert command("list_failed_refunds")[0] == 0  # the default window is the last 24 hours
    code, raw = command("list_failed_refunds", "--since", "3d", "--format", "json")
    assert code == 1 and json.loads(raw)["failedTotal"] == 1


def test_retry_of_a_failed_refund_whose_amount_was_taken_meanwhile_is_refused(refund_of, queued_refunds, monkeypatch):
    refund = refund_of(amount=1500, payment_amount=2000)
    queued_refunds.clear()
    fail_gateway_refunds(monkeypatch, lambda: GatewayUnavailableError("down"), times=1)
    run_task(refund, retries=REFUND_MAX_RETRIES)
    txn = refund.transaction
    refund_create(transaction_id=txn.pk, amount=1000, reason="", actor=Actor(type=MERCHANT, id="k", merchant_id=txn.merchant_id))

    code, out = command("retry_failed_refunds", "--refund", refund.public_id)

    assert code == 1 and "exceeds the amount still refundable" in out
    refund.refresh_from_db()
    assert refund.status == "failed"


def test_stalled_refunds_are_queued_again(refund_of, queued_refunds):
    refund = refund_of(amount=500)
    queued_refunds.clear()  # the broker lost the message
    Refund.objects.filter(pk=refund.pk).update(updated_at=timezone.now() - dt.timedelta(minutes=30))

    assert refunds_requeue_stalled() == 1
    assert queued_refunds == [refund.pk]
    run_queued(queued_refunds)
    refund.refresh_from_db()
    assert refund.status == "succeeded"


def test_the_refund_task_is_a_late_acked_money_task_on_the_payments_queue():
    from flowpay.celery import app

    task = app.tasks["refunds.execute"]
    assert task.acks_late is True and task.reject_on_worker_lost is True
    route = app.amqp.router.route({}, "refunds.execute")
    assert route["queue"].name == "payments"


@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_executes_the_refund_once(merchant_a, make_payment, monkeypatch):
    # given a refund queued (after commit) to a private queue that a real worker consumes
    txn = make_payment(merchant_a, amount=3000)
    queue = f"test-refunds-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setattr(refund_execute_task, "delay", lambda refund_id: refund_execute_task.apply_async(args=[refund_id], queue=queue))
    worker = start_celery_worker(queue)
    try:
        refund = refund_create(transaction_id=txn.pk, amount=1200, reason="Customer service request",
                               actor=merchant_actor(merchant_a))

        # when the worker picks it up
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            refund.refresh_from_db()
            if refund.status == "succeeded":
                break
            time.sleep(0.2)

        # then the payment was refunded once, by the worker
        assert refund.status == "succeeded", "the worker did not execute the refund"
        txn.refresh_from_db()
        assert (txn.status, txn.amount_refunded) == ("partially_refunded", 1200)
        assert charge_of(txn).amount_refunded == 1200
        assert AuditEntry.objects.filter(action="refund.succeeded", object_id=refund.public_id,
                                         actor_type="worker", actor_id="refunds.execute").exists()
    finally:
        stop_process(worker)


def test_retry_failed_refunds_refuses_unknown_or_unfailed_refunds_as_usage_errors(refund_of, queued_refunds):
    from django.core.management import CommandError

    refund = refund_of(amount=500)  # pending, not failed
    for ids in (["re_doesnotexist"], [refund.public_id]):
        with pytest.raises(CommandError) as raised:
            call_command("retry_failed_refunds", *[arg for i in ids for arg in ("--refund", i)], stdout=StringIO())
        assert raised.value.returncode == 2


def test_a_merchant_retries_its_failed_refund_over_the_api(merchant_a, merchant_b, refund_of, queued_refunds, monkeypatch,
                                                          django_capture_on_commit_callbacks):
    refund = refund_of(amount=500)
    queued_refunds.clear()
    fail_gateway_refunds(monkeypatch, lambda: GatewayUnavailableError("down"), times=1)
    run_task(refund, retries=REFUND_MAX_RETRIES)
    url = f"/payment/refunds/{refund.public_id}/retry"

    assert merchant_b.client.post(url).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = merchant_a.client.post(url)
    assert response.status_code == 200 and response.json()["status"] == "processing"
    run_queued(queued_refunds)
    assert merchant_a.client.get(f"/payment/refunds/{refund.public_id}").json()["status"] == "succeeded"
    assert merchant_a.client.post(url).status_code == 409  # only failed refunds can be retried
    assert charge_of(refund.transaction).amount_refunded == 500


def test_a_chargeback_opened_after_the_refund_was_queued_stops_it_before_the_gateway(refund_of, queued_refunds, monkeypatch):
    from gateways.simulator.adapter import SimulatorGateway
    from refunds.services.chargebacks import chargeback_create

    refund = refund_of(amount=500, payment_amount=2000)
    queued_refunds.clear()
    chargeback_create(transaction_id=refund.transaction_id, chargeback_reference="CB-LATE", amount=1000,
                      reason="Unauthorized transaction", actor=Actor.system("test"))
    calls = []
    monkeypatch.setattr(SimulatorGateway, "refund", lambda self, **kw: calls.append(kw))

    run_task(refund)

    refund.refresh_from_db()
    assert (refund.status, refund.failure_code) == ("failed", "charge_disputed") and calls == []
    refund.transaction.refresh_from_db()
    assert refund.transaction.amount_refund_reserved == 0  # nothing went out: the reservation is released
