"""Velocity counters in Redis (the test's own Redis database): payments per card
fingerprint over a sliding hour, counted once per payment request whatever the retries."""

import datetime as dt
import threading

import pytest
import requests
import time_machine
from django.utils import timezone

from fraud.models import Decision
from fraud.screening.velocity import velocity_count, velocity_counts_read
from gateways.simulator.adapter import SimulatorGateway
from payments.models import Transaction
from tests.support.fraud import URL, add_rule, pay

VISA = SimulatorGateway().describe_payment_method(token="pm_card_visa").fingerprint


def card_counts(account) -> dict:
    return velocity_counts_read(merchant_id=account.merchant.pk, livemode=False, subject="card_fingerprint", value=VISA)


@pytest.mark.django_db
def test_the_sixth_payment_from_one_card_within_an_hour_is_blocked(merchant_a, merchant_b):
    add_rule(merchant_a, "block if :total_charges_per_card_fingerprint_hourly: > 5")
    for n in range(1, 6):
        response = pay(merchant_a)
        assert response.status_code == 201, (n, response.content)
        assert Decision.objects.get(transaction__public_id=response.json()["id"]).signals[
            "total_charges_per_card_fingerprint_hourly"] == n
    sixth = pay(merchant_a)
    assert sixth.status_code == 402 and sixth.json()["error"]["code"] == "fraud_blocked"
    # another card of the same merchant, and the same card at another merchant, are counted apart
    assert pay(merchant_a, paymentMethod="pm_card_mastercard").status_code == 201
    assert pay(merchant_b).status_code == 201
    assert card_counts(merchant_a)["total_charges_per_card_fingerprint_hourly"] == 6


@pytest.mark.django_db
def test_the_window_slides(merchant_a):
    add_rule(merchant_a, "block if :total_charges_per_card_fingerprint_hourly: > 5")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(5):
            assert pay(merchant_a).status_code == 201
    with time_machine.travel(start + dt.timedelta(minutes=40), tick=False):
        assert pay(merchant_a).status_code == 402  # the 6th within the hour
    with time_machine.travel(start + dt.timedelta(minutes=61), tick=False):
        # the first five left the hour: the 40-minute one and this one remain
        response = pay(merchant_a)
        assert response.status_code == 201
        signals = Decision.objects.get(transaction__public_id=response.json()["id"]).signals
        assert signals["total_charges_per_card_fingerprint_hourly"] == 2
        assert signals["total_charges_per_card_fingerprint_daily"] == 7
    with time_machine.travel(start + dt.timedelta(days=7, minutes=62), tick=False):
        # a week later only what is younger than 7 days counts: this one alone
        response = pay(merchant_a)
        signals = Decision.objects.get(transaction__public_id=response.json()["id"]).signals
        assert signals["total_charges_per_card_fingerprint_weekly"] == 1


@pytest.mark.django_db
def test_declines_are_counted_per_card(merchant_a):
    add_rule(merchant_a, "block if :declined_charges_per_card_fingerprint_hourly: >= 2")
    declining = {"paymentMethod": "pm_card_visa_chargeDeclined"}
    assert pay(merchant_a, **declining).json()["error"]["code"] == "card_declined"
    assert pay(merchant_a, **declining).json()["error"]["code"] == "card_declined"
    assert pay(merchant_a, **declining).json()["error"]["code"] == "fraud_blocked"


@pytest.mark.django_db
def test_a_retry_under_the_same_idempotency_key_is_counted_once(merchant_a):
    first = pay(merchant_a, key="order-1")
    again = pay(merchant_a, key="order-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert card_counts(merchant_a)["total_charges_per_card_fingerprint_hourly"] == 1
    assert pay(merchant_a, key="order-2").status_code == 201
    assert card_counts(merchant_a)["total_charges_per_card_fingerprint_hourly"] == 2


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_retrying_one_request_at_once_count_it_once(live_server, merchant_a):
    barrier = threading.Barrier(20)
    statuses, lock = [], threading.Lock()

    def send():
        barrier.wait()
        response = requests.post(
            f"{live_server.url}{URL}", json={"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"},
            headers={"Authorization": f"Bearer {merchant_a.api_key}", "Idempotency-Key": "order-77"}, timeout=30,
        )
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == 20 and set(statuses) <= {201, 409}, statuses
    assert statuses.count(201) >= 1
    assert Transaction.objects.count() == 1 and Decision.objects.count() == 1
    assert card_counts(merchant_a)["total_charges_per_card_fingerprint_hourly"] == 1


@pytest.mark.django_db
def test_twenty_threads_counting_one_payment_key_at_once_count_it_once():
    # the counter itself, under the same member from 20 threads at once (ZADD NX)
    barrier, results = threading.Barrier(20), []

    def count():
        barrier.wait()
        results.append(velocity_count(merchant_id=1, livemode=False, subjects={"card_fingerprint": "fp_same"},
                                      member="flowpay:ik_same")["total_charges_per_card_fingerprint_hourly"])

    threads = [threading.Thread(target=count) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [1] * 20
    assert velocity_count(merchant_id=1, livemode=False, subjects={"card_fingerprint": "fp_same"},
                          member="flowpay:ik_other")["total_charges_per_card_fingerprint_hourly"] == 2
