"""Receiving gateway webhooks (POST /webhooks/stripe, gateway_events.views): nothing stored
for what cannot be verified, one inbox row and one effect per event however often and
concurrently it is delivered, unknown events ignored, unconfigured gateways refused, a 503
when processing cannot be queued, the card-data guard on the webhook path, the lag metric.

Stripe events are signed with Stripe's scheme and are about real PaymentIntents made at a
real localstripe (tests/support/inbound_webhooks.py: `deliver`, `stripe_webhooks`)."""

import threading
import time

import pytest

from audit.models import AuditEntry
from core.carddata import luhn_valid
from gateway_events.models import InboundEvent
from gateways.credentials import credentials_reload
from tests.support.inbound_webhooks import event_id_of, intent_object, sign, stripe_event, stuck_stripe_payment, webhook_audit
from webhooks.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("tamper", ["forged_signature", "altered_byte", "stale_timestamp", "missing_header", "wrong_secret"])
def test_unverifiable_deliveries_are_rejected_with_400_and_nothing_is_stored(
    stripe_webhooks, localstripe_url, lost_stripe_answers, merchant_a, deliver, tamper,
):
    txn = stuck_stripe_payment(merchant_a)
    (charged,) = lost_stripe_answers.made
    payload = stripe_event("payment_intent.succeeded", intent_object(localstripe_url, charged.reference))
    header = sign(payload)
    if tamper == "forged_signature":
        header = header.split(",v1=")[0] + ",v1=" + "0" * 64
    elif tamper == "altered_byte":
        altered = payload.replace(b'"amount": 1999', b'"amount": 1998', 1)
        assert altered != payload
        payload = altered
    elif tamper == "stale_timestamp":
        header = sign(payload, timestamp=int(time.time()) - 301)
    elif tamper == "missing_header":
        header = ""
    elif tamper == "wrong_secret":
        header = sign(payload, secret="whsec_somebody_else")
    audit_before = AuditEntry.objects.count()

    response = deliver.stripe(payload, header=header)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "webhook_signature_invalid")
    assert not InboundEvent.objects.exists()
    assert AuditEntry.objects.count() == audit_before
    txn.refresh_from_db()
    assert txn.status == "processing"


def test_the_same_event_delivered_twice_has_one_effect(stripe_webhooks, localstripe_url, lost_stripe_answers, merchant_a, deliver):
    txn = stuck_stripe_payment(merchant_a)
    (charged,) = lost_stripe_answers.made
    payload = stripe_event("payment_intent.succeeded", intent_object(localstripe_url, charged.reference))

    first = deliver.stripe(payload)
    second = deliver.stripe(payload, timestamp=int(time.time()) + 1)  # Stripe's retry: same event, new signature

    assert (first.status_code, first.json()) == (200, {"received": True, "duplicate": False})
    assert (second.status_code, second.json()) == (200, {"received": True, "duplicate": True})
    assert InboundEvent.objects.count() == 1
    assert InboundEvent.objects.get().attempts == 1
    assert webhook_audit(event_id_of(payload)).count() == 1
    assert AuditEntry.objects.filter(object_id=txn.public_id, action="transaction.resolved").count() == 1
    # and the merchant is told once (the outbox event written with the change)
    assert OutboxEvent.objects.filter(merchant=merchant_a.merchant, type="transaction.completed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_the_same_event_store_one_row_and_apply_it_once(
    stripe_webhooks, localstripe_url, lost_stripe_answers, make_merchant, celery_eager,
):
    from django.db import connection
    from django.test import Client

    txn = stuck_stripe_payment(make_merchant("Concurrent"))
    (charged,) = lost_stripe_answers.made
    payload = stripe_event("payment_intent.succeeded", intent_object(localstripe_url, charged.reference))
    barrier, answers = threading.Barrier(8), []

    def gateway_retry():
        try:
            barrier.wait(timeout=10)
            response = Client().post("/webhooks/stripe", data=payload, content_type="application/json",
                                     HTTP_STRIPE_SIGNATURE=sign(payload))
            answers.append((response.status_code, response.json().get("duplicate")))
        finally:
            connection.close()

    threads = [threading.Thread(target=gateway_retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answers) == [(200, False)] + [(200, True)] * 7
    assert InboundEvent.objects.count() == 1
    assert InboundEvent.objects.get().status == "processed"
    txn.refresh_from_db()
    assert txn.status == "completed"
    assert AuditEntry.objects.filter(object_id=txn.public_id, action="transaction.resolved").count() == 1


def test_an_event_about_an_unknown_payment_or_of_an_unhandled_type_is_ignored(stripe_webhooks, deliver):
    unknown = stripe_event("payment_intent.succeeded", {"id": "pi_1NotFlowPays", "object": "payment_intent",
                                                         "amount": 500, "currency": "usd", "status": "succeeded",
                                                         "metadata": {}})
    other = stripe_event("customer.created", {"id": "cus_1Someone", "object": "customer"})

    assert deliver.stripe(unknown).status_code == 200
    assert deliver.stripe(other).status_code == 200

    rows = {row.type: row for row in InboundEvent.objects.all()}
    assert rows["payment_intent.succeeded"].status == "ignored"
    assert rows["payment_intent.succeeded"].note == "payment pi_1NotFlowPays: unknown to FlowPay"
    assert (rows["customer.created"].status, rows["customer.created"].note) == ("ignored", "FlowPay does not act on customer.created events")
    assert not AuditEntry.objects.filter(actor_type="webhook").exists()


def test_secret_rotation_accepts_events_signed_with_either_secret(stripe_webhooks, monkeypatch, deliver):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_new_one,whsec_old_one")
    credentials_reload()

    for secret in ("whsec_new_one", "whsec_old_one"):
        payload = stripe_event("customer.created", {"id": f"cus_{secret}", "object": "customer"})
        assert deliver.stripe(payload, secret=secret).status_code == 200
    assert deliver.stripe(stripe_event("customer.created", {"id": "cus_x", "object": "customer"})).status_code == 400
    assert InboundEvent.objects.count() == 2


def test_webhooks_of_a_gateway_not_enabled_or_not_configured_are_refused_clearly(stripe_gateway, settings, monkeypatch, client):
    payload = stripe_event("customer.created", {"id": "cus_1", "object": "customer"})
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    credentials_reload()

    settings.FLOWPAY_GATEWAYS = ["simulator"]
    response = client.post("/webhooks/stripe", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(payload))
    assert (response.status_code, response.json()["error"]["code"]) == (404, "resource_missing")

    settings.FLOWPAY_GATEWAYS = ["simulator", "stripe"]
    response = client.post("/webhooks/stripe", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(payload))
    assert (response.status_code, response.json()["error"]["code"]) == (400, "webhook_not_configured")
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["error"]["message"]

    assert client.get("/webhooks/stripe").status_code == 405
    assert client.post("/webhooks/simulator", data=payload, content_type="application/json").status_code == 404
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db(transaction=True)  # the task is queued when the inbox row really commits
def test_a_webhook_is_answered_503_when_its_processing_cannot_be_queued_and_a_redelivery_queues_it(
    stripe_webhooks, monkeypatch, deliver,
):
    from gateway_events.tasks import process_inbound_event_task

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    payload = stripe_event("customer.created", {"id": "cus_1Queued", "object": "customer"})
    with monkeypatch.context() as patch:
        patch.setattr(process_inbound_event_task, "delay", broker_down)
        response = deliver.stripe(payload)
    assert (response.status_code, response.json()["error"]["code"]) == (503, "queue_unavailable")
    assert InboundEvent.objects.get().status == "received"

    response = deliver.stripe(payload)
    assert response.json() == {"received": True, "duplicate": True}
    assert InboundEvent.objects.get().status == "ignored"


# --- card-data guard ----------------------------------------------------------------------
def luhn_valid_digits(length: int) -> str:
    number = int("4" + "1" * (length - 1))
    while not luhn_valid(str(number)):
        number += 1
    return str(number)


def test_a_realistic_event_with_luhn_valid_digit_runs_passes_the_card_data_guard_on_the_webhook_path_only(
    stripe_webhooks, merchant_a, make_payment, deliver,
):
    # given a charge.refunded event as Stripe sends it: a card network's transaction id and
    # an E.164 phone number are long digit runs that can pass the Luhn check by chance
    txn = make_payment(merchant_a)
    network_transaction_id, phone = luhn_valid_digits(15), "+" + luhn_valid_digits(13)
    charge = {
        "id": "ch_1Guard", "object": "charge", "amount": txn.amount, "amount_refunded": 0, "captured": True,
        "payment_intent": txn.gateway_reference, "billing_details": {"phone": phone, "email": "a@example.com"},
        "payment_method_details": {"type": "card", "card": {
            "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "network": "visa",
            "network_transaction_id": network_transaction_id,
        }},
    }
    payload = stripe_event("charge.refunded", charge)

    # then the webhook takes it (verified by its signature), where any other path refuses it
    assert deliver.stripe(payload).status_code == 200
    assert InboundEvent.objects.get().payload["payment_method_details"]["card"]["network_transaction_id"] == network_transaction_id
    refused = merchant_a.client.post("/payment/transactions", data=payload, content_type="application/json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "card_data_not_allowed")


def test_a_forged_webhook_carrying_a_card_number_is_rejected_and_stored_nowhere(stripe_webhooks, deliver):
    payload = stripe_event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent", "card": "4242424242424242"})

    response = deliver.stripe(payload, header="t=1,v1=" + "0" * 64)

    assert response.status_code == 400 and b"4242424242424242" not in response.content
    assert not InboundEvent.objects.exists()


# --- observability ------------------------------------------------------------------------
def test_webhook_lag_seconds_is_exported(stripe_webhooks, deliver, client):
    payload = stripe_event("customer.created", {"id": "cus_1Lag", "object": "customer"}, created=int(time.time()) - 42)
    assert deliver.stripe(payload).status_code == 200

    body = client.get("/metrics").content.decode()

    assert 'webhook_lag_seconds_bucket{gateway="stripe",le="60.0",outcome="ignored"}' in body
    assert 'webhook_lag_seconds_count{gateway="stripe",outcome="ignored"}' in body
