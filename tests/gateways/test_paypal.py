"""The PayPal gateway against PayPal's documented responses, served over local HTTP by
tests/support/paypal_fake.py (recorded bodies in tests/support/fixtures/paypal/)."""

import datetime as dt
import json
import logging
import socket

import pytest

from gateways import credentials
from gateways.base import (
    ChargeRequest,
    Gateway,
    GatewayRequestError,
    GatewayTimeout,
    GatewayUnavailableError,
    Outcome,
    WebhookVerificationError,
)
from gateways.paypal import client as paypal_module
from gateways.paypal.adapter import PayPalGateway, clear_token_cache
from tests.support.paypal_fake import FakePayPal, fixture, fixture_bytes

pytestmark = pytest.mark.django_db

CLIENT_ID = "AdFlowPayTestClient0001"
CLIENT_SECRET = "EKflowpay-test-secret-9f3k"
WEBHOOK_ID = "9XL90610J3647323C"
VAULT_TOKEN = "8kk8451t"  # a Vault v3 payment token of a PayPal wallet
ORDERS = "/v2/checkout/orders"


@pytest.fixture
def paypal(monkeypatch):
    fake = FakePayPal(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
    monkeypatch.setenv("PAYPAL_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("PAYPAL_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("PAYPAL_API_BASE", fake.url)
    monkeypatch.setenv("PAYPAL_WEBHOOK_ID", WEBHOOK_ID)
    credentials.credentials_reload()
    clear_token_cache()
    yield fake
    fake.stop()
    monkeypatch.undo()
    credentials.credentials_reload()
    clear_token_cache()


@pytest.fixture
def gateway(paypal) -> PayPalGateway:
    return PayPalGateway(connect_timeout=2, read_timeout=2)


def charge(*, amount=1999, currency="USD", capture=True, token=VAULT_TOKEN, reference="txn_7Hq2ZkP4") -> ChargeRequest:
    return ChargeRequest(amount=amount, currency=currency, payment_method=token, capture=capture, flowpay_reference=reference)


def key(n: int = 1, operation: str = "authorize", txn: str = "txn_7Hq2ZkP4") -> str:
    return f"flowpay:{txn}:{operation}:{n}"


def test_the_gateway_implements_the_protocol():
    assert isinstance(PayPalGateway(), Gateway) and PayPalGateway.name == "paypal"


# --- OAuth --------------------------------------------------------------------------
def test_the_access_token_is_fetched_once_and_reused(gateway, paypal):
    first = gateway.authorize(payment=charge(), idempotency_key=key(1))
    second = gateway.authorize(payment=charge(reference="txn_other"), idempotency_key=key(1, txn="txn_other"))

    assert first.outcome == second.outcome == Outcome.SUCCEEDED
    token_calls = paypal.received("POST", "/v1/oauth2/token")
    assert len(token_calls) == 1
    assert token_calls[0].form == {"grant_type": "client_credentials"}
    assert token_calls[0].header("Authorization").startswith("Basic ")
    creates = paypal.received("POST", ORDERS)
    assert [r.header("Authorization") for r in creates] == [f"Bearer {paypal.tokens_issued[0]}"] * 2


def test_a_401_drops_the_token_and_retries_once_with_a_new_one(gateway, paypal):
    gateway.authorize(payment=charge(), idempotency_key=key(1))
    paypal.revoke_tokens()  # PayPal expired the token early

    result = gateway.authorize(payment=charge(reference="txn_b"), idempotency_key=key(1, txn="txn_b"))

    assert result.outcome == Outcome.SUCCEEDED
    assert len(paypal.tokens_issued) == 2
    attempts = paypal.received("POST", ORDERS)[1:]
    assert [r.header("PayPal-Request-Id") for r in attempts] == [key(1, txn="txn_b")] * 2
    assert attempts[1].header("Authorization") == f"Bearer {paypal.tokens_issued[1]}"


def test_a_second_401_after_the_refresh_is_unavailable_not_a_retry_loop(gateway, paypal):
    paypal.queue("POST", ORDERS, status=401, fixture="error_401_authentication_failure", times=2)

    with pytest.raises(GatewayUnavailableError):
        gateway.authorize(payment=charge(), idempotency_key=key(1))

    assert len(paypal.received("POST", ORDERS)) == 2
    assert len(paypal.tokens_issued) == 2


def test_a_credentials_reload_takes_effect_at_once(gateway, paypal, monkeypatch):
    gateway.authorize(payment=charge(), idempotency_key=key(1))
    paypal.client_id, paypal.client_secret = "AdRotatedClient0002", "EKrotated-secret-77aa"
    monkeypatch.setenv("PAYPAL_CLIENT_ID", "AdRotatedClient0002")
    monkeypatch.setenv("PAYPAL_CLIENT_SECRET", "EKrotated-secret-77aa")
    credentials.credentials_reload()

    result = gateway.authorize(payment=charge(reference="txn_c"), idempotency_key=key(1, txn="txn_c"))

    assert result.outcome == Outcome.SUCCEEDED
    assert len(paypal.tokens_issued) == 2  # a token per (client_id, api_base)


def test_rejected_client_credentials_are_unavailable_and_never_show_the_secret(gateway, paypal):
    paypal.client_secret = "another-secret"

    with pytest.raises(GatewayUnavailableError) as caught:
        gateway.authorize(payment=charge(), idempotency_key=key(1))

    assert caught.value.code == "gateway_authentication_failed"
    assert CLIENT_SECRET not in str(caught.value) and "…9f3k" in str(caught.value)
    assert paypal.received("POST", ORDERS) == []  # nothing was sent to the payments API
    assert gateway.verify_credentials() is False


def test_verify_credentials_and_health_check_are_token_calls(gateway, paypal):
    assert gateway.verify_credentials() is True
    health = gateway.health_check()
    assert health.healthy and health.latency_ms is not None and health.latency_ms >= 0
    assert len(paypal.received("POST", "/v1/oauth2/token")) == 2  # fresh token each time

    paypal.queue("POST", "/v1/oauth2/token", status=503, body={"name": "SERVICE_UNAVAILABLE"})
    assert gateway.health_check().healthy is False


# --- authorize ----------------------------------------------------------------------
def test_automatic_capture_succeeds_with_the_capture_id(gateway, paypal):
    result = gateway.authorize(payment=charge(amount=1999), idempotency_key=key(1))

    assert result.outcome == Outcome.SUCCEEDED
    assert result.reference in paypal.captures and result.amount_captured == 1999 and not result.retryable
    (create,) = paypal.received("POST", ORDERS)
    assert create.header("PayPal-Request-Id") == key(1)
    assert create.header("Prefer") == "return=representation"
    assert create.json == {
        "intent": "CAPTURE",
        "purchase_units": [{
            "reference_id": "txn_7Hq2ZkP4", "custom_id": "txn_7Hq2ZkP4", "invoice_id": key(1),
            "amount": {"currency_code": "USD", "value": "19.99"},
        }],
        "payment_source": {"paypal": {"vault_id": VAULT_TOKEN}},
    }
    order_id = paypal.captures[result.reference]["supplementary_data"]["related_ids"]["order_id"]
    assert order_id in result.message


def test_a_billing_agreement_id_is_sent_as_a_billing_agreement_token(gateway, paypal):
    gateway.authorize(payment=charge(token="B-7NX39286BH385153W"), idempotency_key=key(1))

    (create,) = paypal.received("POST", ORDERS)
    assert create.json["payment_source"] == {"token": {"id": "B-7NX39286BH385153W", "type": "BILLING_AGREEMENT"}}


def test_manual_capture_authorizes_then_captures_part_and_fetch_sees_it(gateway, paypal):
    authorized = gateway.authorize(payment=charge(amount=1999, capture=False), idempotency_key=key(1))

    assert authorized.outcome == Outcome.SUCCEEDED and authorized.amount_captured == 0
    assert authorized.reference in paypal.authorizations
    assert paypal.received("POST", ORDERS)[0].json["intent"] == "AUTHORIZE"

    captured = gateway.capture(reference=authorized.reference, amount=1500, idempotency_key=key(2, "capture"))

    assert captured.succeeded and captured.amount == 1500 and captured.reference in paypal.captures
    (request,) = paypal.received("POST", f"/v2/payments/authorizations/{authorized.reference}/capture")
    assert request.json == {"amount": {"currency_code": "USD", "value": "15.00"}, "final_capture": True}
    assert request.header("PayPal-Request-Id") == key(2, "capture")

    seen = gateway.fetch(reference=authorized.reference)
    assert (seen.status, seen.amount, seen.amount_captured, seen.currency) == ("succeeded", 1999, 1500, "USD")
    assert seen.flowpay_reference == "txn_7Hq2ZkP4"


def test_capturing_an_already_captured_authorization_reports_the_existing_capture(gateway, paypal):
    authorized = gateway.authorize(payment=charge(capture=False), idempotency_key=key(1))
    first = gateway.capture(reference=authorized.reference, amount=1999, idempotency_key=key(2, "capture"))

    # the answer to the first capture was lost; the merchant captures again under a new key
    again = gateway.capture(reference=authorized.reference, amount=1999, idempotency_key=key(3, "capture"))

    assert again.succeeded and again.reference == first.reference and again.amount == 1999
    assert len(paypal.received("POST", "/v2/payments/authorizations/*/capture")) == 1


def test_void_cancels_the_authorization(gateway, paypal):
    authorized = gateway.authorize(payment=charge(capture=False), idempotency_key=key(1))

    voided = gateway.void(reference=authorized.reference, idempotency_key=key(2, "void"))

    assert voided.succeeded and voided.reference == authorized.reference
    (request,) = paypal.received("POST", f"/v2/payments/authorizations/{authorized.reference}/void")
    assert request.header("PayPal-Request-Id") == key(2, "void")
    assert gateway.fetch(reference=authorized.reference).status == "canceled"


def test_an_approved_order_is_authorized_under_a_request_id_derived_from_the_key(gateway, paypal):
    paypal.queue("POST", ORDERS, fixture="order_approved")

    result = gateway.authorize(payment=charge(capture=False), idempotency_key=key(1))

    assert result.outcome == Outcome.SUCCEEDED and result.reference in paypal.authorizations
    (step,) = paypal.received("POST", "/v2/checkout/orders/*/authorize")
    assert step.header("PayPal-Request-Id") == f"{key(1)}:authorize"


def test_a_created_order_is_captured_for_automatic_capture(gateway, paypal):
    paypal.queue("POST", ORDERS, fixture="order_created")

    result = gateway.authorize(payment=charge(amount=1999, capture=True), idempotency_key=key(1))

    assert result.outcome == Outcome.SUCCEEDED and result.reference in paypal.captures
    assert result.amount_captured == 1999
    (step,) = paypal.received("POST", "/v2/checkout/orders/*/capture")
    assert step.header("PayPal-Request-Id") == f"{key(1)}:capture"


def test_instrument_declined_is_a_card_declined_result(gateway, paypal):
    paypal.queue("POST", ORDERS, status=422, fixture="error_422_instrument_declined")

    result = gateway.authorize(payment=charge(), idempotency_key=key(1))

    assert result.outcome == Outcome.DECLINED and result.decline_code == "card_declined"
    assert not result.retryable and result.reference is None
    assert "declined by the processor or bank" in result.message and "fa9ffe64391d4" in result.message


def test_a_declined_capture_inside_a_completed_order_maps_the_processor_code(gateway, paypal):
    paypal.queue("POST", ORDERS, fixture="order_completed_capture_declined")

    result = gateway.authorize(payment=charge(), idempotency_key=key(1))

    assert result.outcome == Outcome.DECLINED and result.decline_code == "insufficient_funds"
    assert result.reference in paypal.captures and result.amount_captured == 0


def test_payer_action_required_is_requires_action_with_the_payer_action_link(gateway, paypal):
    paypal.queue("POST", ORDERS, fixture="order_payer_action_required")

    result = gateway.authorize(payment=charge(), idempotency_key=key(1))

    assert result.outcome == Outcome.REQUIRES_ACTION
    assert result.reference in paypal.orders  # the order id: nothing is authorized yet
    assert result.next_action == {"type": "redirect_to_url", "url": f"https://www.paypal.com/checkoutnow?token={result.reference}"}
    assert gateway.fetch(reference=result.reference).status == "requires_action"
    # cancelling it has nothing to void at PayPal: the unapproved order expires
    assert gateway.void(reference=result.reference, idempotency_key=key(2, "void")).succeeded


@pytest.mark.parametrize(
    ("amount", "currency", "value"),
    [
        (1999, "USD", "19.99"), (1000, "USD", "10.00"), (5, "USD", "0.05"), (500, "JPY", "500"),
        (1999, "KWD", "1.999"), (99999999999, "KWD", "99999999.999"), (150000, "HUF", "1500"),
    ],
)
def test_amounts_travel_as_exact_decimal_strings(gateway, paypal, amount, currency, value):
    result = gateway.authorize(payment=charge(amount=amount, currency=currency), idempotency_key=key(1))

    (create,) = paypal.received("POST", ORDERS)
    assert create.json["purchase_units"][0]["amount"] == {"currency_code": currency, "value": value}
    assert result.amount_captured == amount  # and back from PayPal's string, exactly


def test_an_amount_paypal_cannot_express_is_refused_before_any_call(gateway, paypal):
    with pytest.raises(GatewayRequestError) as caught:
        gateway.authorize(payment=charge(amount=1999, currency="HUF"), idempotency_key=key(1))

    assert caught.value.code == "invalid_amount"
    assert paypal.requests == []


# --- errors -------------------------------------------------------------------------
def test_a_server_error_on_authorize_is_a_gateway_timeout_logged_without_the_secret(gateway, paypal, caplog):
    paypal.queue("POST", ORDERS, status=500, fixture="error_500_internal_server_error")

    with caplog.at_level(logging.WARNING, logger="gateways.paypal.adapter"), pytest.raises(GatewayTimeout) as caught:
        gateway.authorize(payment=charge(), idempotency_key=key(1))

    assert not caught.value.retryable
    (record,) = [r for r in caplog.records if r.name == "gateways.paypal.adapter"]
    assert record.levelno == logging.WARNING and "gateway timeout" in record.getMessage()
    assert record.credential == "…9f3k"
    assert CLIENT_SECRET not in caplog.text


def test_no_answer_in_time_is_a_gateway_timeout(paypal, caplog):
    gateway = PayPalGateway(connect_timeout=2, read_timeout=0.3)
    gateway.verify_credentials()  # the token call is not what hangs
    paypal.queue("POST", ORDERS, delay=5)

    with caplog.at_level(logging.WARNING, logger="gateways.paypal.adapter"), pytest.raises(GatewayTimeout):
        gateway.authorize(payment=charge(), idempotency_key=key(1))

    assert "gateway timeout" in caplog.text


def test_a_refund_that_hangs_is_a_gateway_timeout(paypal, caplog):
    gateway = PayPalGateway(connect_timeout=2, read_timeout=0.3)
    paypal.queue("POST", "/v2/payments/captures/*/refund", delay=5)

    with caplog.at_level(logging.WARNING), pytest.raises(GatewayTimeout):
        gateway.refund(reference="74L756601X447022Y", amount=100, idempotency_key=key(1, "refund"))

    assert "gateway timeout on refund" in caplog.text


def test_a_refused_connection_sent_nothing_so_it_is_unavailable(paypal, monkeypatch, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("PAYPAL_API_BASE", closed)
    credentials.credentials_reload()
    # a cached token, so the payment call itself is the one that cannot connect
    paypal_module._tokens[(CLIENT_ID, closed)] = paypal_module._AccessToken("A21AAcached", refresh_at=float("inf"))

    with caplog.at_level(logging.WARNING), pytest.raises(GatewayUnavailableError):
        PayPalGateway(connect_timeout=1).authorize(payment=charge(), idempotency_key=key(1))

    assert "gateway timeout" not in caplog.text


def test_rate_limiting_is_unavailable(gateway, paypal):
    paypal.queue("POST", ORDERS, status=429, body={"name": "RATE_LIMIT_REACHED", "message": "Too many requests."})

    with pytest.raises(GatewayUnavailableError):
        gateway.authorize(payment=charge(), idempotency_key=key(1))


def test_an_invalid_request_is_a_request_error_with_paypals_issue(gateway, paypal):
    paypal.queue("POST", ORDERS, status=400, body={
        "name": "INVALID_REQUEST", "message": "Request is not well-formed, syntactically incorrect, or violates schema.",
        "details": [{"field": "/payment_source/paypal/vault_id", "issue": "INVALID_PARAMETER_VALUE",
                     "description": "The value of a field is invalid."}],
        "debug_id": "b1d1f06c7246c",
    })

    with pytest.raises(GatewayRequestError) as caught:
        gateway.authorize(payment=charge(), idempotency_key=key(1))

    assert caught.value.code == "invalid_parameter_value"


def test_capturing_an_unknown_authorization_is_a_request_error(gateway, paypal):
    with pytest.raises(GatewayRequestError) as caught:
        gateway.capture(reference="0VF52814937998046", amount=100, idempotency_key=key(1, "capture"))

    assert caught.value.code == "resource_missing"
    assert paypal.received("POST", "/v2/payments/authorizations/*/capture") == []


# --- refund and fetch -----------------------------------------------------------------
def test_refund_part_of_a_capture(gateway, paypal):
    captured = gateway.authorize(payment=charge(amount=1999), idempotency_key=key(1))

    refund = gateway.refund(reference=captured.reference, amount=500, idempotency_key=key(1, "refund"))

    assert refund.succeeded and refund.amount == 500 and refund.reference not in (None, captured.reference)
    (request,) = paypal.received("POST", f"/v2/payments/captures/{captured.reference}/refund")
    assert request.json == {"amount": {"currency_code": "USD", "value": "5.00"}}
    assert request.header("PayPal-Request-Id") == key(1, "refund")
    assert gateway.fetch(reference=captured.reference).status == "succeeded"


def test_refund_of_a_manually_captured_payment_by_its_authorization_id(gateway, paypal):
    authorized = gateway.authorize(payment=charge(amount=1999, capture=False), idempotency_key=key(1))
    captured = gateway.capture(reference=authorized.reference, amount=1999, idempotency_key=key(2, "capture"))

    refund = gateway.refund(reference=authorized.reference, amount=1999, idempotency_key=key(1, "refund"))

    assert refund.succeeded
    assert paypal.received("POST", f"/v2/payments/captures/{captured.reference}/refund")


def test_fetch_by_reference_reads_captures_then_authorizations(gateway, paypal):
    capture = gateway.fetch(reference="74L756601X447022Y")  # PayPal's documented capture
    authorization = gateway.fetch(reference="3KM30725CS262502P")  # and authorization

    assert (capture.status, capture.amount, capture.amount_captured, capture.currency) == ("succeeded", 10000, 10000, "USD")
    assert (authorization.status, authorization.amount, authorization.amount_captured) == ("requires_capture", 10000, 0)
    assert [r.path for r in paypal.received("GET")] == [
        "/v2/payments/captures/74L756601X447022Y",
        "/v2/payments/captures/3KM30725CS262502P",
        "/v2/payments/authorizations/3KM30725CS262502P",
    ]
    assert gateway.fetch(reference="0000000000UNKNOWN") is None


def test_fetch_by_idempotency_key_replays_the_create_under_the_same_request_id(gateway, paypal):
    charged = gateway.authorize(payment=charge(amount=1999), idempotency_key=key(1))
    orders_before = len(paypal.orders)

    seen = gateway.fetch(idempotency_key=key(1))

    assert (seen.reference, seen.status, seen.amount_captured) == (charged.reference, "succeeded", 1999)
    assert seen.flowpay_reference == "txn_7Hq2ZkP4"
    probe = paypal.received("POST", ORDERS)[-1]
    assert probe.header("PayPal-Request-Id") == key(1)
    assert "payment_source" not in probe.json  # the probe itself can never charge anyone
    assert len(paypal.orders) == orders_before  # PayPal answered with the original order


def test_fetch_by_a_key_paypal_never_saw_is_none(gateway, paypal):
    assert gateway.fetch(idempotency_key=key(9)) is None


# --- settlements ----------------------------------------------------------------------
DAY = {"start": dt.datetime(2014, 7, 11, tzinfo=dt.UTC), "end": dt.datetime(2014, 7, 12, tzinfo=dt.UTC)}
SEARCH = "/v1/reporting/transactions"


def test_settlement_records_map_the_transaction_search_rows_by_t_code(gateway, paypal):
    paypal.queue("GET", SEARCH, fixture="transaction_search")  # the balance-affecting read
    paypal.queue("GET", SEARCH, fixture="transaction_search")  # every row: the same four

    records = list(gateway.settlement_records(**DAY))

    assert [(r.reference, r.kind, r.amount, r.currency, r.status, r.fee) for r in records] == [
        ("5TY05013RG002845M", "charge", 46500, "USD", "succeeded", 1379),
        ("1FN09943UW5736419", "refund", -4000, "USD", "succeeded", -116),
        ("3EM7162346836513K", "charge", 5000, "JPY", "pending", 214),
        ("0RB51227U64553542", "payout", -20000, "USD", "succeeded", None),
    ]
    assert records[0].key == "5TY05013RG002845M:T0006:Y" and records[0].flowpay_reference == "Thank you for your business"
    assert records[0].idempotency_key == "Invoice-005" and records[0].balance_affecting
    assert records[1].parent_reference == "5TY05013RG002845M"
    assert records[0].created == dt.datetime(2014, 7, 11, 4, 3, 52, tzinfo=dt.UTC)
    first, second = paypal.received("GET", SEARCH)
    assert (first.query["balance_affecting_records_only"], second.query["balance_affecting_records_only"]) == ("Y", "N")
    assert first.query["start_date"] == "2014-07-11T00:00:00Z" and first.query["end_date"] == "2014-07-11T23:59:59Z"
    assert first.query["fields"] == "transaction_info" and first.query["page_size"] == "500"


def test_settlement_records_read_every_page_of_both_reads(gateway, paypal):
    rows = fixture("transaction_search")["transaction_details"]
    for part, (page, total) in zip((rows[:1], rows[1:2], rows[:1], rows[1:2]), ((1, 2), (2, 2), (1, 2), (2, 2)), strict=True):
        body = fixture("transaction_search")
        body.update(transaction_details=part, page=page, total_pages=total)
        paypal.queue("GET", SEARCH, body=body)

    records = list(gateway.settlement_records(**DAY))

    assert [r.kind for r in records] == ["charge", "refund"]
    assert [(r.query["balance_affecting_records_only"], r.query["page"]) for r in paypal.received("GET", SEARCH)] == [
        ("Y", "1"), ("Y", "2"), ("N", "1"), ("N", "2")]


def test_a_row_listed_only_among_all_rows_is_not_balance_affecting_and_keeps_its_own_key(gateway, paypal):
    rows = fixture("transaction_search")["transaction_details"]
    held = {"transaction_info": {**rows[0]["transaction_info"], "transaction_event_code": "T1503"}}
    again = {"transaction_info": dict(rows[0]["transaction_info"])}  # same id and code, not balance-affecting
    paypal.queue("GET", SEARCH, body={**fixture("transaction_search"), "transaction_details": rows[:1]})
    paypal.queue("GET", SEARCH, body={**fixture("transaction_search"), "transaction_details": [rows[0], held, again]})

    records = list(gateway.settlement_records(**DAY))

    assert [(r.key, r.balance_affecting) for r in records] == [
        ("5TY05013RG002845M:T0006:Y", True), ("5TY05013RG002845M:T1503:N", False), ("5TY05013RG002845M:T0006:N", False)]


def test_a_range_longer_than_31_days_is_searched_in_windows(gateway, paypal):
    empty = {**fixture("transaction_search"), "transaction_details": [], "total_pages": 1}
    for _ in range(4):
        paypal.queue("GET", SEARCH, body=empty)

    start = dt.datetime(2014, 7, 1, tzinfo=dt.UTC)
    assert list(gateway.settlement_records(start=start, end=start + dt.timedelta(days=40))) == []

    windows = [(r.query["start_date"], r.query["end_date"]) for r in paypal.received("GET", SEARCH)]
    assert windows == [("2014-07-01T00:00:00Z", "2014-07-31T23:59:59Z")] * 2 + [("2014-08-01T00:00:00Z", "2014-08-09T23:59:59Z")] * 2


# --- webhooks -------------------------------------------------------------------------
def test_a_verified_webhook_becomes_a_webhook_event(gateway, paypal):
    payload = fixture_bytes("webhook_payment_capture_completed")

    event = gateway.parse_webhook(payload=payload, headers=fixture("webhook_headers"))

    assert event.id == "WH-9YJ16368AL6057013-6DC39630JU8971338" and event.gateway == "paypal"
    assert event.type == "PAYMENT.CAPTURE.COMPLETED" and event.object_type == "capture"
    assert event.object_reference == "02335565G34798738"
    assert event.flowpay_reference == "29b0b044-fbfe-4325-952e-20000d4a6caf"
    assert event.created == dt.datetime(2021, 11, 1, 17, 39, 22, 666000, tzinfo=dt.UTC)
    assert event.data == json.loads(payload)["resource"] and event.livemode is False
    (verify,) = paypal.received("POST", "/v1/notifications/verify-webhook-signature")
    headers = fixture("webhook_headers")
    assert verify.json == {
        "auth_algo": headers["PAYPAL-AUTH-ALGO"],
        "cert_url": headers["PAYPAL-CERT-URL"],
        "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
        "transmission_sig": headers["PAYPAL-TRANSMISSION-SIG"],
        "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"],
        "webhook_id": WEBHOOK_ID,
        "webhook_event": json.loads(payload),
    }
    assert payload.strip() in verify.body  # the event exactly as PayPal sent it


def test_webhook_headers_are_found_in_any_case_or_django_meta_form(gateway, paypal):
    meta = {"HTTP_" + name.replace("-", "_"): value for name, value in fixture("webhook_headers").items()}

    event = gateway.parse_webhook(payload=fixture_bytes("webhook_payment_capture_completed"), headers=meta)

    assert event.type == "PAYMENT.CAPTURE.COMPLETED"


def test_a_webhook_paypal_does_not_verify_is_rejected(gateway, paypal):
    paypal.queue("POST", "/v1/notifications/verify-webhook-signature", fixture="verify_webhook_signature_failure")

    with pytest.raises(WebhookVerificationError):
        gateway.parse_webhook(payload=fixture_bytes("webhook_payment_capture_completed"), headers=fixture("webhook_headers"))


@pytest.mark.parametrize("missing", ["PAYPAL-TRANSMISSION-SIG", "PAYPAL-CERT-URL", "PAYPAL-AUTH-ALGO"])
def test_a_webhook_without_its_signature_headers_is_rejected_without_asking_paypal(gateway, paypal, missing):
    headers = {k: v for k, v in fixture("webhook_headers").items() if k != missing}

    with pytest.raises(WebhookVerificationError, match=missing.lower()[7:].replace("-", "_")):
        gateway.parse_webhook(payload=fixture_bytes("webhook_payment_capture_completed"), headers=headers)

    assert paypal.requests == []


def test_a_webhook_that_is_not_json_is_rejected(gateway, paypal):
    with pytest.raises(WebhookVerificationError):
        gateway.parse_webhook(payload=b"{not json", headers=fixture("webhook_headers"))


def test_a_webhook_that_cannot_be_verified_because_paypal_fails_is_rejected(gateway, paypal):
    paypal.queue("POST", "/v1/notifications/verify-webhook-signature", status=500, fixture="error_500_internal_server_error")

    with pytest.raises(WebhookVerificationError):
        gateway.parse_webhook(payload=fixture_bytes("webhook_payment_capture_completed"), headers=fixture("webhook_headers"))
