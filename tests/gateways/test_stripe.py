"""The Stripe adapter against a real localstripe server: real HTTP, the real `stripe` SDK,
no mocks. localstripe ignores Idempotency-Key, so the lost-response tests assert what
FlowPay relies on: finding the payment again by the key stored in its metadata."""

import datetime as dt
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import uuid

import pytest
import requests

from core.actors import Actor
from gateways import registry
from gateways.base import (
    ChargeRequest,
    GatewayRequestError,
    GatewayTimeout,
    GatewayUnavailableError,
    Outcome,
    WebhookVerificationError,
)
from gateways.credentials import credentials_reload, gateway_credentials
from gateways.stripe.adapter import StripeGateway
from payments.models import TransactionStatus
from payments.services.transactions import transaction_capture

LOGGER = "gateways.stripe.adapter"


def charge(amount=1999, *, payment_method="pm_card_visa", capture=True, currency="USD"):
    reference = f"txn_{uuid.uuid4().hex[:16]}"
    return ChargeRequest(
        amount=amount, currency=currency, payment_method=payment_method, capture=capture,
        flowpay_reference=reference, metadata={"flowpay_transaction": reference},
    )


def new_key(operation="authorize"):
    return f"flowpay:txn_{uuid.uuid4().hex[:16]}:{operation}:1"


def localstripe(method, url, path, **kwargs):
    """Direct HTTP to localstripe, for what the gateway protocol does not expose."""
    key = gateway_credentials("stripe").api_key
    response = requests.request(method, f"{url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=5, **kwargs)
    response.raise_for_status()
    return response.json()


def closed_port_url():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def use_stripe_env(monkeypatch, **values):
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    credentials_reload()


# --- authorize ------------------------------------------------------------------------
def test_automatic_payment_succeeds_captured_in_full(stripe_gateway):
    request = charge(2500)

    result = stripe_gateway.authorize(payment=request, idempotency_key=new_key())

    assert result.outcome == Outcome.SUCCEEDED
    assert result.reference.startswith("pi_")
    assert (result.amount, result.amount_captured) == (2500, 2500)
    payment = stripe_gateway.fetch(reference=result.reference)
    assert payment.status == "succeeded"
    assert (payment.amount, payment.amount_captured, payment.currency) == (2500, 2500, "USD")
    assert payment.flowpay_reference == request.flowpay_reference


def test_declined_card_is_a_final_decline(stripe_gateway):
    # localstripe declines at charge time only card 4000000000000341 (pm_card_chargeCustomerFail)
    result = stripe_gateway.authorize(payment=charge(payment_method="pm_card_chargeCustomerFail"), idempotency_key=new_key())

    assert result.outcome == Outcome.DECLINED
    assert result.decline_code == "card_declined"
    assert result.retryable is False
    assert result.amount_captured == 0


def test_card_requiring_3ds_returns_requires_action(stripe_gateway, localstripe_url):
    # given a card that requires authentication (created directly at localstripe)
    method = localstripe("POST", localstripe_url, "/v1/payment_methods", data={
        "type": "card", "card[number]": "4000002500003155", "card[exp_month]": "12",
        "card[exp_year]": "2030", "card[cvc]": "123",
    })

    result = stripe_gateway.authorize(payment=charge(payment_method=method["id"]), idempotency_key=new_key())

    assert result.outcome == Outcome.REQUIRES_ACTION
    assert result.reference.startswith("pi_")
    assert result.next_action["type"] == "use_stripe_sdk"
    assert stripe_gateway.fetch(reference=result.reference).status == "requires_action"


def test_unknown_payment_method_is_a_request_error(stripe_gateway):
    with pytest.raises(GatewayRequestError) as raised:
        stripe_gateway.authorize(payment=charge(payment_method="pm_does_not_exist"), idempotency_key=new_key())

    assert raised.value.code == "resource_missing"
    assert raised.value.retryable is False


def test_metadata_carries_flowpay_reference_and_idempotency_key(stripe_gateway, localstripe_url):
    request, key = charge(), new_key()

    result = stripe_gateway.authorize(payment=request, idempotency_key=key)

    intent = localstripe("GET", localstripe_url, f"/v1/payment_intents/{result.reference}")
    assert intent["metadata"]["flowpay_transaction"] == request.flowpay_reference
    assert intent["metadata"]["flowpay_idempotency_key"] == key
    assert intent["currency"] == "usd"
    assert intent["capture_method"] == "automatic"


# --- capture, void, refund ------------------------------------------------------------
def test_manual_payment_is_authorized_then_captured_in_full(stripe_gateway):
    authorized = stripe_gateway.authorize(payment=charge(4000, capture=False), idempotency_key=new_key())
    assert authorized.outcome == Outcome.SUCCEEDED
    assert authorized.amount_captured == 0
    assert stripe_gateway.fetch(reference=authorized.reference).status == "requires_capture"

    captured = stripe_gateway.capture(reference=authorized.reference, amount=4000, idempotency_key=new_key("capture"))

    assert captured.succeeded
    assert (captured.reference, captured.amount) == (authorized.reference, 4000)
    payment = stripe_gateway.fetch(reference=authorized.reference)
    assert (payment.status, payment.amount_captured) == ("succeeded", 4000)


def test_partial_capture_captures_the_amount_asked(stripe_gateway):
    authorized = stripe_gateway.authorize(payment=charge(5000, capture=False), idempotency_key=new_key())

    captured = stripe_gateway.capture(reference=authorized.reference, amount=3000, idempotency_key=new_key("capture"))

    assert captured.succeeded
    assert captured.amount == 3000
    assert stripe_gateway.fetch(reference=authorized.reference).status == "succeeded"


def test_capture_repeated_after_success_is_idempotent(stripe_gateway):
    authorized = stripe_gateway.authorize(payment=charge(1500, capture=False), idempotency_key=new_key())
    stripe_gateway.capture(reference=authorized.reference, amount=1500, idempotency_key=new_key("capture"))

    again = stripe_gateway.capture(reference=authorized.reference, amount=1500, idempotency_key=new_key("capture"))

    assert again.succeeded
    assert again.amount == 1500


def test_capture_of_unknown_payment_is_a_request_error(stripe_gateway):
    with pytest.raises(GatewayRequestError) as raised:
        stripe_gateway.capture(reference="pi_doesnotexist", amount=100, idempotency_key=new_key("capture"))

    assert raised.value.code == "resource_missing"


def test_void_cancels_an_authorization_and_is_idempotent(stripe_gateway):
    authorized = stripe_gateway.authorize(payment=charge(3000, capture=False), idempotency_key=new_key())

    voided = stripe_gateway.void(reference=authorized.reference, idempotency_key=new_key("void"))

    assert voided.succeeded
    assert stripe_gateway.fetch(reference=authorized.reference).status == "canceled"
    assert stripe_gateway.void(reference=authorized.reference, idempotency_key=new_key("void")).succeeded


def test_void_of_a_captured_payment_is_refused_as_a_state_conflict(stripe_gateway):
    completed = stripe_gateway.authorize(payment=charge(), idempotency_key=new_key())

    voided = stripe_gateway.void(reference=completed.reference, idempotency_key=new_key("void"))

    assert not voided.succeeded
    assert voided.error_code == "payment_intent_unexpected_state"


def test_full_refund(stripe_gateway):
    completed = stripe_gateway.authorize(payment=charge(2200), idempotency_key=new_key())

    refunded = stripe_gateway.refund(reference=completed.reference, amount=2200, idempotency_key=new_key("refund"))

    assert refunded.succeeded
    assert refunded.reference.startswith("re_")
    assert refunded.amount == 2200


def test_partial_refunds_are_separate_refunds(stripe_gateway, localstripe_url):
    completed = stripe_gateway.authorize(payment=charge(3000), idempotency_key=new_key())

    first = stripe_gateway.refund(reference=completed.reference, amount=500, idempotency_key=new_key("refund"))
    second = stripe_gateway.refund(reference=completed.reference, amount=700, idempotency_key=new_key("refund"))

    assert first.succeeded and second.succeeded
    assert (first.amount, second.amount) == (500, 700)
    assert first.reference != second.reference
    intent = localstripe("GET", localstripe_url, f"/v1/payment_intents/{completed.reference}")
    assert intent["latest_charge"]["amount_refunded"] == 1200


def test_refund_of_unknown_payment_is_a_request_error(stripe_gateway):
    with pytest.raises(GatewayRequestError) as raised:
        stripe_gateway.refund(reference="pi_doesnotexist", amount=100, idempotency_key=new_key("refund"))

    assert raised.value.code == "resource_missing"


# --- fetch: a lost response -----------------------------------------------------------
def test_lost_response_is_found_again_by_idempotency_key(stripe_gateway):
    # given other payments made around it
    stripe_gateway.authorize(payment=charge(100), idempotency_key=new_key())
    request, key = charge(4321), new_key()
    # when the answer to this authorize is lost on the way back to FlowPay
    lost = stripe_gateway.authorize(payment=request, idempotency_key=key)
    stripe_gateway.authorize(payment=charge(200), idempotency_key=new_key())

    # then asking Stripe by the key FlowPay sent finds the same PaymentIntent, succeeded
    found = stripe_gateway.fetch(idempotency_key=key)

    assert found is not None
    assert found.reference == lost.reference
    assert (found.status, found.amount, found.amount_captured) == ("succeeded", 4321, 4321)
    assert found.flowpay_reference == request.flowpay_reference


def test_lost_response_of_a_decline_is_found_as_failed(stripe_gateway):
    key = new_key()
    stripe_gateway.authorize(payment=charge(payment_method="pm_card_chargeCustomerFail"), idempotency_key=key)

    found = stripe_gateway.fetch(idempotency_key=key)

    assert found is not None
    assert found.status == "failed"
    assert found.amount_captured == 0


def test_fetch_of_unknown_payment_is_none(stripe_gateway):
    assert stripe_gateway.fetch(reference="pi_doesnotexist") is None
    assert stripe_gateway.fetch(idempotency_key=new_key()) is None
    assert stripe_gateway.fetch() is None


# --- an unreachable Stripe ------------------------------------------------------------
def test_a_refused_connection_is_unavailable_for_every_call_because_nothing_was_sent(stripe_gateway, monkeypatch):
    use_stripe_env(monkeypatch, STRIPE_API_BASE=closed_port_url())

    # nothing reached Stripe: safe to retry or fail over, even for money-moving calls
    with pytest.raises(GatewayUnavailableError) as raised:
        stripe_gateway.authorize(payment=charge(), idempotency_key=new_key())
    assert raised.value.retryable is True
    with pytest.raises(GatewayUnavailableError):
        stripe_gateway.capture(reference="pi_x", amount=100, idempotency_key=new_key("capture"))
    with pytest.raises(GatewayUnavailableError):
        stripe_gateway.refund(reference="pi_x", amount=100, idempotency_key=new_key("refund"))
    with pytest.raises(GatewayUnavailableError):
        stripe_gateway.fetch(reference="pi_x")
    with pytest.raises(GatewayUnavailableError):
        list(stripe_gateway.settlement_records(start=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
                                               end=dt.datetime.now(dt.UTC)))
    assert stripe_gateway.verify_credentials() is False
    health = stripe_gateway.health_check()
    assert health.healthy is False
    assert "unreachable" in health.detail


@pytest.fixture
def silent_stripe():
    """A server that accepts connections and never answers: the request was sent, the
    response is lost."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_lost_response_makes_money_moving_calls_a_gateway_timeout(stripe_gateway, monkeypatch, settings, caplog, silent_stripe):
    use_stripe_env(monkeypatch, STRIPE_API_BASE=silent_stripe)
    settings.FLOWPAY_GATEWAY_READ_TIMEOUT_SECONDS = 0.5
    key = gateway_credentials("stripe").api_key

    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(GatewayTimeout) as raised:
        stripe_gateway.authorize(payment=charge(), idempotency_key=new_key())
    assert raised.value.retryable is False
    assert "gateway timeout" in caplog.text
    logged = " ".join(str(value) for record in caplog.records for value in vars(record).values())
    assert key not in logged
    # capture, void and refund may have happened: unknown, never failed over
    with pytest.raises(GatewayTimeout):
        stripe_gateway.capture(reference="pi_x", amount=100, idempotency_key=new_key("capture"))
    with pytest.raises(GatewayTimeout):
        stripe_gateway.void(reference="pi_x", idempotency_key=new_key("void"))
    # reads change nothing: unavailable, safe to retry
    with pytest.raises(GatewayUnavailableError):
        stripe_gateway.fetch(reference="pi_x")


# --- credentials and health -----------------------------------------------------------
def test_verify_credentials_and_health_check(stripe_gateway):
    assert stripe_gateway.verify_credentials() is True

    health = stripe_gateway.health_check()

    assert health.healthy is True
    assert health.latency_ms is not None and health.latency_ms >= 0


def test_refused_key_is_unavailable_and_never_shown(stripe_gateway, monkeypatch, caplog):
    # localstripe accepts any key starting with sk_: anything else is a 401
    bad_key = f"bogus_{uuid.uuid4().hex}"
    use_stripe_env(monkeypatch, STRIPE_API_KEY=bad_key)

    with caplog.at_level(logging.INFO, logger=LOGGER), pytest.raises(GatewayUnavailableError) as raised:
        stripe_gateway.authorize(payment=charge(), idempotency_key=new_key())

    assert raised.value.code == "gateway_authentication_failed"
    assert raised.value.retryable is True  # nothing happened: safe to fail over
    assert stripe_gateway.verify_credentials() is False
    health = stripe_gateway.health_check()
    assert health.healthy is False
    assert bad_key[-4:] in health.detail and bad_key not in health.detail
    assert bad_key not in str(raised.value)
    logged = " ".join(str(value) for record in caplog.records for value in vars(record).values())
    assert bad_key not in logged


def test_reloaded_key_takes_effect_on_the_next_call(stripe_gateway, monkeypatch):
    assert stripe_gateway.verify_credentials() is True

    use_stripe_env(monkeypatch, STRIPE_API_KEY="revoked_key_1234")

    assert stripe_gateway.verify_credentials() is False


def test_missing_key_is_unavailable(stripe_gateway, monkeypatch):
    use_stripe_env(monkeypatch, STRIPE_API_KEY="")

    with pytest.raises(GatewayUnavailableError):
        stripe_gateway.authorize(payment=charge(), idempotency_key=new_key())
    assert stripe_gateway.health_check().healthy is False


# --- settlements ----------------------------------------------------------------------
def day_range(day: dt.date) -> dict:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return {"start": start, "end": start + dt.timedelta(days=1)}


def test_settlement_records_of_the_day_are_balance_transactions_keyed_by_their_id(stripe_gateway, localstripe_url):
    completed = stripe_gateway.authorize(payment=charge(2600), idempotency_key=new_key())
    refund = stripe_gateway.refund(reference=completed.reference, amount=600, idempotency_key=new_key("refund"))
    intent = localstripe("GET", localstripe_url, f"/v1/payment_intents/{completed.reference}")
    day = dt.datetime.fromtimestamp(intent["created"], tz=dt.UTC).date()

    records = {r.reference: r for r in stripe_gateway.settlement_records(**day_range(day))}

    # the charge is known by its PaymentIntent (what FlowPay stores), the refund by its id
    paid = records[completed.reference]
    assert (paid.kind, paid.amount, paid.currency, paid.status) == ("charge", 2600, "USD", "succeeded")
    assert paid.key.startswith("txn_") and paid.created.date() == day and paid.fee == 0
    refunded = records[refund.reference]
    assert (refunded.kind, refunded.amount, refunded.parent_reference) == ("refund", -600, completed.reference)
    assert refunded.idempotency_key.startswith("flowpay:txn_")  # the refund's metadata, echoed
    earlier = {r.reference for r in stripe_gateway.settlement_records(**day_range(day - dt.timedelta(days=1)))}
    assert completed.reference not in earlier and refund.reference not in earlier


def test_a_balance_transaction_maps_every_reporting_category():
    from gateways.stripe.settlements import settlement_record

    base = {"id": "txn_1", "amount": -1500, "currency": "eur", "created": 1684108800, "fee": 1500}
    dispute = settlement_record({**base, "reporting_category": "dispute", "source": {
        "id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": "pi_1", "status": "needs_response"}})
    payout = settlement_record({**base, "id": "txn_2", "reporting_category": "payout", "source": "po_1"})
    reversal = settlement_record({**base, "id": "txn_3", "reporting_category": "partial_capture_reversal",
                                  "source": {"id": "ch_1", "payment_intent": "pi_1"}})

    assert (dispute.kind, dispute.reference, dispute.parent_reference, dispute.currency) == ("dispute", "dp_1", "pi_1", "EUR")
    assert (payout.kind, payout.reference, payout.fee) == ("payout", "po_1", 1500)
    assert (reversal.kind, reversal.reference) == ("partial_capture_reversal", "ch_1")
    assert dispute.created == dt.datetime(2023, 5, 15, tzinfo=dt.UTC)


# --- webhooks -------------------------------------------------------------------------
def event_payload(**overrides) -> bytes:
    event = {
        "id": f"evt_{uuid.uuid4().hex[:14]}", "object": "event", "type": "payment_intent.succeeded",
        "created": int(time.time()), "livemode": False, "api_version": "2026-10-28.endive",
        "data": {"object": {
            "id": "pi_webhook123", "object": "payment_intent", "amount": 1999, "currency": "usd",
            "status": "succeeded", "metadata": {"flowpay_transaction": "txn_webhook1"},
        }},
        **overrides,
    }
    return json.dumps(event).encode()


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def test_signed_webhook_is_parsed(stripe_gateway):
    payload = event_payload()
    sent = json.loads(payload)

    event = stripe_gateway.parse_webhook(payload=payload, headers={"Stripe-Signature": sign(payload, "whsec_test")})

    assert event.id == sent["id"]
    assert (event.gateway, event.type) == ("stripe", "payment_intent.succeeded")
    assert event.created == dt.datetime.fromtimestamp(sent["created"], tz=dt.UTC)
    assert (event.object_type, event.object_reference) == ("payment_intent", "pi_webhook123")
    assert event.flowpay_reference == "txn_webhook1"
    assert event.data == sent["data"]["object"]
    assert isinstance(event.data, dict)
    assert event.livemode is False


def test_webhook_header_name_is_case_insensitive(stripe_gateway):
    payload = event_payload()

    event = stripe_gateway.parse_webhook(payload=payload, headers={"stripe-signature": sign(payload, "whsec_test")})

    assert event.object_reference == "pi_webhook123"


@pytest.mark.parametrize("tamper", ["forged_signature", "altered_byte", "old_timestamp", "missing_header", "wrong_secret"])
def test_unverifiable_webhook_is_rejected(stripe_gateway, tamper):
    payload = event_payload()
    header = sign(payload, "whsec_test")
    if tamper == "forged_signature":
        header = header.split(",v1=")[0] + ",v1=" + "0" * 64
    elif tamper == "altered_byte":
        payload = payload.replace(b"1999", b"9999", 1)
    elif tamper == "old_timestamp":
        header = sign(payload, "whsec_test", timestamp=int(time.time()) - 301)
    elif tamper == "missing_header":
        header = ""
    elif tamper == "wrong_secret":
        header = sign(payload, "whsec_other")

    with pytest.raises(WebhookVerificationError):
        stripe_gateway.parse_webhook(payload=payload, headers={"Stripe-Signature": header} if header else {})


def test_signed_payload_that_is_not_an_event_is_rejected(stripe_gateway):
    payload = b"not json"

    with pytest.raises(WebhookVerificationError):
        stripe_gateway.parse_webhook(payload=payload, headers={"Stripe-Signature": sign(payload, "whsec_test")})


def test_webhook_secret_rotation_accepts_either_secret(stripe_gateway, monkeypatch):
    use_stripe_env(monkeypatch, STRIPE_WEBHOOK_SECRET="whsec_new, whsec_old")
    payload = event_payload()

    for secret in ("whsec_new", "whsec_old"):
        event = stripe_gateway.parse_webhook(payload=payload, headers={"Stripe-Signature": sign(payload, secret)})
        assert event.object_reference == "pi_webhook123"
    with pytest.raises(WebhookVerificationError):
        stripe_gateway.parse_webhook(payload=payload, headers={"Stripe-Signature": sign(payload, "whsec_test")})


# --- through FlowPay's payment service ------------------------------------------------
@pytest.fixture
def stripe_is_primary(stripe_gateway, settings, monkeypatch):
    settings.FLOWPAY_GATEWAYS = ["stripe"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "stripe", StripeGateway)
    registry.gateway_named.cache_clear()
    yield stripe_gateway
    registry.gateway_named.cache_clear()


def test_service_completes_a_payment_at_stripe(stripe_is_primary, make_merchant, make_payment):
    account = make_merchant()

    txn = make_payment(account, amount=1999)

    assert txn.status == TransactionStatus.COMPLETED
    assert txn.gateway == "stripe"
    assert txn.gateway_reference.startswith("pi_")
    assert txn.amount_captured == 1999
    payment = stripe_is_primary.fetch(reference=txn.gateway_reference)
    assert payment.flowpay_reference == txn.public_id


def test_service_captures_a_manual_payment_at_stripe(stripe_is_primary, make_merchant, make_payment):
    account = make_merchant()
    txn = make_payment(account, amount=5000, capture_method="manual")
    assert txn.status == TransactionStatus.AUTHORIZED
    assert txn.gateway_reference.startswith("pi_")

    captured = transaction_capture(transaction_id=txn.pk, amount=3500, actor=Actor.system("test"))

    assert captured.status == TransactionStatus.COMPLETED
    assert captured.amount_captured == 3500
    assert stripe_is_primary.fetch(reference=txn.gateway_reference).status == "succeeded"


def test_service_records_a_decline_at_stripe(stripe_is_primary, make_merchant, make_payment):
    account = make_merchant()

    txn = make_payment(account, payment_method="pm_card_chargeCustomerFail")

    assert txn.status == TransactionStatus.FAILED
    assert txn.gateway == "stripe"
    assert txn.failure_code == "card_declined"
