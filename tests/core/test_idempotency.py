"""Idempotency-Key with Stripe's semantics, under real concurrency."""

import datetime as dt
import threading

import pytest
import requests
from django.utils import timezone

from core.idempotency import idempotency_records_purge, request_fingerprint
from core.models import IdempotencyRecord
from core.tasks import purge_idempotency_keys_task
from gateways.models import SimulatorCharge
from payments.models import Transaction

URL = "/payment/transactions"
BODY = {"amount": 2500, "currency": "eur", "paymentMethod": "pm_card_visa"}


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_requests_with_one_key_make_one_payment_and_one_gateway_call(live_server, merchant_a):
    barrier = threading.Barrier(20)
    responses: list[requests.Response] = []
    lock = threading.Lock()

    def send():
        barrier.wait()
        response = requests.post(
            f"{live_server.url}{URL}", json=BODY, timeout=30,
            headers={"Authorization": f"Bearer {merchant_a.api_key}", "Idempotency-Key": "order-42"},
        )
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(responses) == 20
    assert Transaction.objects.count() == 1
    txn = Transaction.objects.get()
    assert SimulatorCharge.objects.count() == 1
    assert SimulatorCharge.objects.get().call_count == 1  # one gateway call
    assert txn.attempts.count() == 1
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    for response in responses:
        if response.status_code == 201:
            assert response.json()["id"] == txn.public_id
        else:
            assert response.json()["error"]["type"] == "idempotency_error"


@pytest.mark.django_db
def test_replay_returns_the_stored_status_and_body(merchant_a):
    first = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Transaction.objects.count() == 1 and SimulatorCharge.objects.get().call_count == 1


@pytest.mark.django_db
def test_a_declined_payment_is_replayed_as_the_same_402(merchant_a):
    body = {**BODY, "paymentMethod": "pm_card_chargeDeclinedInsufficientFunds"}
    first = merchant_a.client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="declined")
    second = merchant_a.client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="declined")
    assert first.status_code == second.status_code == 402
    assert first.json() == second.json()
    assert Transaction.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_other_parameters_is_422(merchant_a):
    merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    response = merchant_a.client.post(URL, {**BODY, "amount": 2501}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "idempotency_error"
    other_endpoint = merchant_a.client.post("/payment/customers", {}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert other_endpoint.status_code == 422
    assert Transaction.objects.count() == 1


@pytest.mark.django_db
def test_same_key_while_the_first_request_runs_is_409(merchant_a):
    IdempotencyRecord.objects.create(
        scope=f"merchant:{merchant_a.merchant.pk}", key="busy", locked_at=timezone.now(), method="POST", path=URL,
        fingerprint=request_fingerprint(method="POST", path=URL, data={"amount": 2500, "currency": "eur", "payment_method": "pm_card_visa"}),
    )
    response = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="busy")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert not Transaction.objects.exists()


@pytest.mark.django_db
def test_a_crashed_request_taken_over_after_the_lock_timeout_does_not_charge_again(merchant_a, make_payment):
    # given a request that created its transaction and then died, leaving the key in flight
    fingerprint = request_fingerprint(method="POST", path=URL, data={"amount": 2500, "currency": "eur", "payment_method": "pm_card_visa"})
    record = IdempotencyRecord.objects.create(
        scope=f"merchant:{merchant_a.merchant.pk}", key="crashed", locked_at=timezone.now() - dt.timedelta(minutes=10),
        method="POST", path=URL, fingerprint=fingerprint,
    )
    txn = make_payment(merchant_a, amount=2500, currency="EUR")
    Transaction.objects.filter(pk=txn.pk).update(idempotency_record=record)

    # when the client retries with the same key
    response = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="crashed")

    # then it gets the transaction that exists, and the gateway saw one charge
    assert response.status_code == 201
    assert response.json()["id"] == txn.public_id
    assert Transaction.objects.count() == 1 and SimulatorCharge.objects.count() == 1
    assert IdempotencyRecord.objects.get(pk=record.pk).status == "completed"


@pytest.mark.django_db
def test_validation_errors_are_not_stored_so_a_corrected_retry_runs(merchant_a):
    bad = merchant_a.client.post(URL, {**BODY, "amount": -1}, format="json", HTTP_IDEMPOTENCY_KEY="fix-me")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    good = merchant_a.client.post(URL, {**BODY, "amount": -1} | {"amount": 2500}, format="json", HTTP_IDEMPOTENCY_KEY="fix-me")
    assert good.status_code == 201


@pytest.mark.django_db
def test_keys_are_scoped_per_merchant(merchant_a, merchant_b):
    a = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    b = merchant_b.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["x" * 256, " padded ", "tab\tkey"])
def test_invalid_keys_are_400(merchant_a, key):
    response = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"
    assert not Transaction.objects.exists()


@pytest.mark.django_db
def test_capture_is_idempotent_too(merchant_a, make_payment):
    txn = make_payment(merchant_a, capture_method="manual")
    first = merchant_a.client.post(f"{URL}/{txn.public_id}/capture", {"amount": 500}, format="json", HTTP_IDEMPOTENCY_KEY="cap")
    second = merchant_a.client.post(f"{URL}/{txn.public_id}/capture", {"amount": 500}, format="json", HTTP_IDEMPOTENCY_KEY="cap")
    assert first.status_code == second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert txn.attempts.filter(operation="capture").count() == 1


@pytest.mark.django_db
def test_keys_are_purged_after_24_hours_and_the_transaction_survives(merchant_a):
    merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")
    merchant_a.client.post(URL, {**BODY, "amount": 1}, format="json", HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - dt.timedelta(hours=25))

    assert purge_idempotency_keys_task.apply().get() == 1

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert Transaction.objects.count() == 2
    assert idempotency_records_purge() == 0
    # after the purge the key is free again: a new request makes a new payment
    again = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == 201 and Transaction.objects.count() == 3
