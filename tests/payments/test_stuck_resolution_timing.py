"""How fast the stuck checker settles payments whose gateway call never happened or left no
record, by default within two minutes, without ever re-sending a call whose outcome is
unknown; and the conservative grace for gateways whose look-up is not authoritative."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import OperationalError

from gateways import registry
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorFaults, SimulatorGateway, simulator_faults_clear, simulator_faults_set
from payments.models import PaymentAttempt, Transaction
from payments.services import transactions as transaction_services
from payments.services.stuck import no_record_grace
from payments.tasks import check_stuck_transactions_task

URL = "/payment/transactions"
BODY = {"amount": 1250, "currency": "usd", "paymentMethod": "pm_card_visa"}
TWO_MINUTES = dt.timedelta(minutes=2)


def checked_at(moment: dt.datetime) -> int:
    with time_machine.travel(moment, tick=True):
        return check_stuck_transactions_task()


def the_payment() -> Transaction:
    return Transaction.objects.get()


def test_the_default_cadence_settles_nothing_sent_and_an_authoritative_no_record_within_two_minutes():
    interval = django_settings.CELERY_BEAT_SCHEDULE["check-stuck-transactions"]["schedule"]
    check_after = dt.timedelta(seconds=django_settings.FLOWPAY_STUCK_CHECK_AFTER_SECONDS)
    grace = dt.timedelta(seconds=django_settings.FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS)
    # the worst case is one full interval after the call became eligible, plus the task itself
    assert check_after + interval < TWO_MINUTES - dt.timedelta(seconds=15)
    assert max(check_after, grace) + interval < TWO_MINUTES - dt.timedelta(seconds=15)
    assert django_settings.FLOWPAY_STUCK_NO_RECORD_GRACE_UNVERIFIED_SECONDS >= 900


def test_the_no_record_grace_is_conservative_unless_the_gateways_look_up_is_authoritative(settings):
    settings.FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS = 75
    settings.FLOWPAY_STUCK_NO_RECORD_GRACE_UNVERIFIED_SECONDS = 900
    assert no_record_grace("simulator") == no_record_grace("stripe") == dt.timedelta(seconds=75)
    assert no_record_grace("paypal") == no_record_grace("no-such-gateway") == no_record_grace(None) == dt.timedelta(seconds=900)


@pytest.mark.django_db(transaction=True)
def test_a_payment_whose_database_dropped_before_the_gateway_call_is_failed_within_two_minutes(
    merchant_a, monkeypatch, celery_eager,
):
    # given a payment committed processing that no gateway could take (its first attempt is
    # recorded with the payment, so only a payment with no gateway to try has none), whose
    # failure could not be recorded (the database dropped before it): nothing was sent
    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(transaction_services, "next_gateway_for_new_payment", lambda **kwargs: None)
    monkeypatch.setattr(transaction_services, "_transaction_fail", database_gone)
    response = merchant_a.client.post(URL, BODY, format="json")
    monkeypatch.undo()
    assert response.status_code == 503 and response.json()["error"]["code"] == "database_unavailable"
    txn = the_payment()
    assert txn.status == "processing" and not txn.attempts.exists()
    opened = txn.processing_started_at

    # the checker leaves it alone while a live request could still be about to call
    assert checked_at(opened + dt.timedelta(seconds=20)) == 0
    # then fails it, without asking anyone, well within two minutes
    assert checked_at(opened + dt.timedelta(seconds=50)) == 1
    txn = the_payment()
    assert (txn.status, txn.failure_code) == ("failed", "gateway_no_record")
    assert not SimulatorCharge.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_payment_whose_every_try_failed_with_nothing_done_is_failed_even_if_the_gateway_cannot_be_asked(
    merchant_a, monkeypatch, celery_eager,
):
    # given a worker that died between two tries, each answered "unavailable" (nothing happened)
    def unavailable_then_die(**kwargs):
        attempt = real_begin(**kwargs)
        PaymentAttempt.objects.filter(pk=attempt.pk).update(outcome="error", error_code="gateway_unavailable")
        raise OperationalError("the worker lost its database")

    real_begin = transaction_services._attempt_begin
    monkeypatch.setattr(transaction_services, "_attempt_begin", unavailable_then_die)
    # (the gateway down from the first try, recorded with the payment: the retry dies)
    simulator_faults_set(SimulatorFaults(error_rate=1.0))
    merchant_a.client.post(URL, BODY, format="json")
    monkeypatch.undo()
    assert list(the_payment().attempts.values_list("outcome", flat=True)) == ["error", "error"]
    # and the gateway still down, so that it cannot be asked
    try:
        assert checked_at(the_payment().processing_started_at + dt.timedelta(seconds=50)) == 1
    finally:
        simulator_faults_clear()
    assert (the_payment().status, the_payment().failure_code) == ("failed", "gateway_no_record")


@pytest.mark.django_db(transaction=True)
def test_a_sent_call_with_no_record_at_an_authoritative_gateway_is_failed_within_two_minutes(merchant_a, celery_eager):
    # given a call that timed out: sent, outcome unknown, and the simulator has no record of it
    simulator_faults_set(SimulatorFaults(timeout_rate=1.0))
    merchant_a.client.post(URL, BODY, format="json")
    simulator_faults_clear()
    txn = the_payment()
    (attempt,) = txn.attempts.all()
    assert (txn.status, attempt.outcome) == ("processing", "unknown")

    # within the grace, "no record" may mean "not visible yet": asked, left processing
    assert checked_at(attempt.started_at + dt.timedelta(seconds=50)) == 1
    assert the_payment().status == "processing"
    # after it, at the next rounds of the checker, the silence is an answer
    assert checked_at(attempt.started_at + dt.timedelta(seconds=70)) == 1
    assert the_payment().status == "processing"
    assert checked_at(attempt.started_at + dt.timedelta(seconds=90)) == 1
    txn = the_payment()
    assert (txn.status, txn.failure_code) == ("failed", "gateway_no_record")
    assert txn.attempts.count() == 1 and not SimulatorCharge.objects.exists()  # never sent again


class UnverifiedSimulator(SimulatorGateway):
    """A gateway whose "no record" cannot be trusted early (as PayPal's)."""

    lookup_is_authoritative = False


@pytest.mark.django_db(transaction=True)
def test_a_gateway_whose_look_up_is_not_authoritative_keeps_the_long_grace(merchant_a, monkeypatch, celery_eager):
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "simulator", UnverifiedSimulator)
    registry.gateway_named.cache_clear()
    simulator_faults_set(SimulatorFaults(timeout_rate=1.0))
    merchant_a.client.post(URL, BODY, format="json")
    simulator_faults_clear()
    started = the_payment().attempts.get().started_at

    assert checked_at(started + dt.timedelta(minutes=5)) == 1
    assert the_payment().status == "processing"
    assert checked_at(started + dt.timedelta(minutes=16)) == 1
    assert (the_payment().status, the_payment().failure_code) == ("failed", "gateway_no_record")
