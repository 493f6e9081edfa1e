"""A capture or void whose answer was lost: the gateway acted (or not), FlowPay still shows
the payment authorized. The stuck checker asks the gateway and settles it, and a call that
had no effect is closed only after the no-record grace."""

import datetime as dt
import threading
import time
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import (
    SimulatorFaults,
    SimulatorGateway,
    simulator_faults_clear,
    simulator_faults_get,
    simulator_faults_set,
)
from payments.models import PaymentAttempt, Transaction
from payments.tasks import check_stuck_transactions_task
from tests.support.commands import run, run_json

URL = "/payment/transactions"
MANUAL = {"amount": 5000, "currency": "usd", "paymentMethod": "pm_card_visa", "captureMethod": "manual"}


@pytest.fixture
def authorized(merchant_a):
    body = merchant_a.client.post(URL, MANUAL, format="json").json()
    assert body["status"] == "authorized"
    yield body["id"]
    simulator_faults_clear()


def attempts_of(public_id: str) -> list[tuple[str, str, str]]:
    return list(PaymentAttempt.objects.filter(transaction__public_id=public_id).order_by("number")
                .values_list("operation", "outcome", "error_code"))


def status_of(public_id: str) -> str:
    return Transaction.objects.get(public_id=public_id).status


def test_the_simulator_faults_command_loses_capture_and_void_responses(db):
    out = StringIO()
    call_command("simulator_faults", "--lost-responses", "capture,void", stdout=out)
    assert simulator_faults_get().lost_responses == ("capture", "void") and simulator_faults_get().active
    call_command("simulator_faults", "--lost-responses", "", stdout=out)
    assert simulator_faults_get().lost_responses == ()
    with pytest.raises(ValueError):
        simulator_faults_set(SimulatorFaults(lost_responses=("refund",)))


@pytest.mark.django_db
def test_a_capture_whose_answer_was_lost_is_completed_by_the_checker(merchant_a, authorized, celery_eager):
    # given a capture made at the gateway whose response was lost
    call_command("simulator_faults", "--lost-responses", "capture", stdout=StringIO())
    capture = merchant_a.client.post(f"{URL}/{authorized}/capture", {}, format="json")
    simulator_faults_clear()
    assert capture.status_code == 503, capture.content
    assert SimulatorCharge.objects.get().status == "succeeded"  # captured there
    assert status_of(authorized) == "authorized"  # not here
    assert attempts_of(authorized)[-1] == ("capture", "unknown", "gateway_timeout")
    # and a cancel, which the gateway refuses: the money was captured
    assert merchant_a.client.post(f"{URL}/{authorized}/cancel", {}, format="json").status_code == 409
    assert status_of(authorized) == "authorized"

    # when the checker runs once the capture is older than its threshold
    assert check_stuck_transactions_task() == 0  # too young yet
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=50), tick=True):
        assert check_stuck_transactions_task() == 1

    # then the payment is completed from the gateway's record, nothing was sent again
    txn = Transaction.objects.get(public_id=authorized)
    assert (txn.status, txn.amount_captured) == ("completed", 5000)
    assert attempts_of(authorized) == [
        ("authorize", "succeeded", ""), ("capture", "succeeded", "gateway_timeout"), ("void", "error", "charge_not_voidable"),
    ]
    assert AuditEntry.objects.filter(object_id=authorized, action="transaction.resolved", actor_type="worker").exists()
    assert check_stuck_transactions_task() == 0
    refused = merchant_a.client.post(f"{URL}/{authorized}/cancel", {}, format="json")
    assert refused.status_code == 409 and "refund" in refused.json()["error"]["message"]


@pytest.mark.django_db
def test_a_void_whose_answer_was_lost_is_canceled_by_the_checker(merchant_a, authorized, celery_eager):
    simulator_faults_set(SimulatorFaults(lost_responses=("void",)))
    assert merchant_a.client.post(f"{URL}/{authorized}/cancel", {}, format="json").status_code == 503
    simulator_faults_clear()
    assert (SimulatorCharge.objects.get().status, status_of(authorized)) == ("canceled", "authorized")

    with time_machine.travel(timezone.now() + dt.timedelta(seconds=50), tick=True):
        assert check_stuck_transactions_task() == 1

    assert status_of(authorized) == "canceled"
    assert attempts_of(authorized)[-1] == ("void", "succeeded", "gateway_timeout")
    assert SimulatorCharge.objects.get().amount_captured == 0


@pytest.mark.django_db
def test_a_lost_capture_that_never_reached_the_gateway_is_closed_after_the_grace_and_can_be_retried(
    merchant_a, authorized, celery_eager,
):
    # given a capture that timed out before reaching the gateway (still uncaptured there)
    simulator_faults_set(SimulatorFaults(timeout_rate=1.0))
    assert merchant_a.client.post(f"{URL}/{authorized}/capture", {}, format="json").status_code == 503
    simulator_faults_clear()
    assert SimulatorCharge.objects.get().status == "requires_capture"
    sent = timezone.now()

    # within the grace the checker asks, and concludes nothing: the capture may still land
    with time_machine.travel(sent + dt.timedelta(seconds=50), tick=True):
        assert check_stuck_transactions_task() == 1
    assert attempts_of(authorized)[-1] == ("capture", "unknown", "gateway_timeout")

    # after it, the gateway's "still uncaptured" is an answer: the call had no effect
    with time_machine.travel(sent + dt.timedelta(seconds=100), tick=True):
        assert check_stuck_transactions_task() == 1
    assert attempts_of(authorized)[-1] == ("capture", "error", "gateway_no_effect")
    assert status_of(authorized) == "authorized"  # manual capture: left to the merchant
    assert AuditEntry.objects.filter(object_id=authorized, action="transaction.capture", result="failure").count() == 2
    assert check_stuck_transactions_task() == 0

    # and the merchant's retry captures it, once
    retry = merchant_a.client.post(f"{URL}/{authorized}/capture", {}, format="json")
    assert retry.status_code == 200 and retry.json()["status"] == "completed"
    assert SimulatorCharge.objects.get().amount_captured == 5000


@pytest.mark.django_db
def test_find_stuck_transactions_lists_an_authorized_payment_whose_capture_went_unanswered(merchant_a, authorized):
    simulator_faults_set(SimulatorFaults(lost_responses=("capture",)))
    assert merchant_a.client.post(f"{URL}/{authorized}/capture", {}, format="json").status_code == 503
    simulator_faults_clear()
    # a capture unanswered for less than --older-than is not listed yet
    assert run_json("find_stuck_transactions", "--older-than", "10m")["unknownCapturesAndVoids"] == []

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=11), tick=False):
        document = run_json("find_stuck_transactions", "--older-than", "10m", expect=1)
        text = run("find_stuck_transactions", "--older-than", "10m", expect=1).out
    assert (document["count"], document["unknownCaptureOrVoidCount"]) == (0, 1)
    [row] = document["unknownCapturesAndVoids"]
    assert (row["id"], row["status"], row["operation"], row["errorCode"], row["amount"]) == (
        authorized, "authorized", "capture", "gateway_timeout", 5000)
    assert 655 <= row["ageSeconds"] <= 700
    assert authorized in text and "capture or void unanswered" in text and "stuck checker settles" in text


@pytest.mark.django_db
def test_find_stuck_transactions_reads_the_unanswered_captures_in_a_fixed_number_of_queries(
    merchant_a, make_payment, django_assert_max_num_queries,
):
    payments = [make_payment(merchant_a, amount=1000 + n, capture_method="manual").public_id for n in range(4)]
    simulator_faults_set(SimulatorFaults(lost_responses=("capture",)))
    for public_id in payments:
        assert merchant_a.client.post(f"{URL}/{public_id}/capture", {}, format="json").status_code == 503
    simulator_faults_clear()

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=11), tick=False):
        with django_assert_max_num_queries(6):  # counts and pages of both tables, not one query per row
            document = run_json("find_stuck_transactions", "--older-than", "10m", expect=1)

    assert sorted(row["id"] for row in document["unknownCapturesAndVoids"]) == sorted(payments)
    assert {(row["operation"], row["attemptNumber"]) for row in document["unknownCapturesAndVoids"]} == {("capture", 2)}


class _ProcessDied(BaseException):
    """The process dying during the gateway call: not an Exception, so nothing on the way
    handles it and no code after the call runs."""


@pytest.mark.django_db(transaction=True)
def test_a_capture_whose_process_died_during_the_call_leaves_an_attempt_the_checker_settles(
    merchant_a, authorized, monkeypatch, celery_eager
):
    real_capture = SimulatorGateway.capture

    def capture_then_die(self, **kwargs):
        real_capture(self, **kwargs)
        raise _ProcessDied

    monkeypatch.setattr(SimulatorGateway, "capture", capture_then_die)
    with pytest.raises(_ProcessDied):
        merchant_a.client.post(f"{URL}/{authorized}/capture", {}, format="json")
    monkeypatch.undo()
    # the attempt was committed before the call: the capture left a trace
    assert attempts_of(authorized)[-1] == ("capture", "started", "")
    assert (SimulatorCharge.objects.get().status, status_of(authorized)) == ("succeeded", "authorized")
    # and while its answer is missing another capture is refused, not sent
    again = merchant_a.client.post(f"{URL}/{authorized}/capture", {}, format="json")
    assert again.status_code == 409 and "in progress" in again.json()["error"]["message"]

    assert check_stuck_transactions_task() == 0  # younger than the checker's threshold
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=50), tick=True):
        assert check_stuck_transactions_task() == 1
    txn = Transaction.objects.get(public_id=authorized)
    assert (txn.status, txn.amount_captured) == ("completed", 5000)
    assert attempts_of(authorized) == [("authorize", "succeeded", ""), ("capture", "succeeded", "")]
    assert SimulatorCharge.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_second_capture_during_a_slow_one_is_refused_at_once_and_the_first_holds_no_lock(merchant_a, authorized):
    simulator_faults_set(SimulatorFaults(latency_ms=1500))
    answers: dict[str, tuple[float, object]] = {}

    def capture(name: str) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {merchant_a.api_key}")
        response = client.post(f"{URL}/{authorized}/capture", {}, format="json")
        answers[name] = (time.monotonic(), response)
        connection.close()

    slow = threading.Thread(target=capture, args=("slow",))
    slow.start()
    time.sleep(0.5)  # the slow capture is at the gateway now
    capture("second")
    slow.join()
    simulator_faults_clear()

    (slow_at, slow_response), (second_at, second_response) = answers["slow"], answers["second"]
    assert slow_response.status_code == 200, slow_response.content
    assert second_response.status_code == 409 and "in progress" in second_response.json()["error"]["message"]
    assert second_at < slow_at  # answered while the first was still at the gateway: no row lock held over the call
    assert [a for a in attempts_of(authorized) if a[0] == "capture"] == [("capture", "succeeded", "")]
    assert status_of(authorized) == "completed"
