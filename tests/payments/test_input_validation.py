"""Bad input always gets a clear 400 naming the field, and changes nothing."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEntry
from core.models import IdempotencyRecord
from gateways.models import SimulatorCharge
from payments.models import Customer, Transaction

pytestmark = pytest.mark.django_db

URL = "/payment/transactions"
VALID = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}


def nothing_stored():
    return not (Transaction.objects.exists() or SimulatorCharge.objects.exists() or IdempotencyRecord.objects.exists()
                or AuditEntry.objects.filter(action__startswith="transaction.").exists())


@pytest.mark.parametrize(
    "changes, param, code",
    [
        ({"amount": -100}, "amount", "amount_too_small"),
        ({"amount": 0}, "amount", "amount_too_small"),
        ({"amount": 19.99}, "amount", "invalid_amount"),
        ({"amount": 100.0}, "amount", "invalid_amount"),
        ({"amount": "1999"}, "amount", "invalid_amount"),
        ({"amount": True}, "amount", "invalid_amount"),
        ({"amount": None}, "amount", "null"),
        ({"amount": [1999]}, "amount", "invalid_amount"),
        ({"amount": 2**63}, "amount", "amount_too_large"),
        ({"amount": 10**30}, "amount", "amount_too_large"),
        ({"amount": 99_999_999_999 + 1}, "amount", "amount_too_large"),
        ({"currency": None}, "currency", "null"),
        ({"currency": "usdd"}, "currency", "invalid_currency"),
        ({"currency": "xyz"}, "currency", "invalid_currency"),
        ({"currency": 840}, "currency", "invalid"),
        ({"currency": "jpy", "amount": 19.5}, "amount", "invalid_amount"),
        ({"currency": "kwd", "amount": 1.999}, "amount", "invalid_amount"),
        ({"paymentMethod": ""}, "paymentMethod", "blank"),
        ({"paymentMethod": "pm card visa"}, "paymentMethod", "invalid"),
        ({"paymentMethod": "x" * 300}, "paymentMethod", "max_length"),
        ({"captureMethod": "later"}, "captureMethod", "invalid_choice"),
        ({"customer": "not-a-customer"}, "customer", "invalid"),
        ({"customer": "cus_doesnotexist"}, "customer", "resource_missing"),
        ({"metadata": "a string"}, "metadata", "invalid_metadata"),
        ({"metadata": {"k": {"nested": 1}}}, "metadata", "invalid_metadata"),
        ({"metadata": {f"k{i}": i for i in range(51)}}, "metadata", "invalid_metadata"),
        ({"metadata": {"k": "x" * 501}}, "metadata", "invalid_metadata"),
        ({"metadata": {"k": "nul\u0000byte"}}, "metadata", "invalid_metadata"),
        ({"description": "nul\u0000byte"}, "description", "null_characters_not_allowed"),
        ({"description": "x" * 1001}, "description", "max_length"),
        ({"status": "completed"}, "status", "parameter_unknown"),
        ({"amountRefunded": 0}, "amountRefunded", "parameter_unknown"),
        ({"amountCaptured": 1999}, "amountCaptured", "parameter_unknown"),
        ({"gateway": "stripe"}, "gateway", "parameter_unknown"),
        ({"id": "txn_mine"}, "id", "parameter_unknown"),
    ],
)
def test_bad_payment_input_is_400_with_field_error_and_nothing_stored(merchant_a, changes, param, code):
    response = merchant_a.client.post(URL, {**VALID, **changes}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert error["message"]
    assert nothing_stored()


@pytest.mark.parametrize("missing", ["amount", "currency", "paymentMethod"])
def test_missing_required_field_is_named(merchant_a, missing):
    body = {k: v for k, v in VALID.items() if k != missing}
    response = merchant_a.client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == missing
    assert nothing_stored()


@pytest.mark.parametrize(
    "raw, content_type, code",
    [
        ('{"amount": 1999, "currency": ', "application/json", "invalid_json"),
        ("not json at all", "application/json", "invalid_json"),
        ('[1, 2, 3]', "application/json", "invalid"),
        ('"just a string"', "application/json", "invalid"),
        ("amount=1999&currency=usd&paymentMethod=pm_card_visa", "application/x-www-form-urlencoded", "unsupported_content_type"),
        (json.dumps(VALID), "text/plain", "unsupported_content_type"),
        ("\xff\xfe garbage", "application/json", "invalid_json"),
        ('{"amount": NaN, "currency": "usd", "paymentMethod": "pm_card_visa"}', "application/json", "invalid_json"),
        ('{"amount": 1999, "amount": 1, "currency": "usd", "paymentMethod": "pm_card_visa"}', "application/json", "invalid_json"),
        ('{"amount": Infinity, "currency": "usd", "paymentMethod": "pm_card_visa"}', "application/json", "invalid_json"),
    ],
)
def test_malformed_bodies_and_wrong_content_types_are_400(merchant_a, raw, content_type, code):
    response = merchant_a.client.generic("POST", URL, raw.encode("latin-1"), content_type=content_type)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert nothing_stored()


def test_currency_exponents_are_respected(merchant_a):
    for currency, amount in [("jpy", 500), ("kwd", 1999), ("eur", 1)]:
        response = merchant_a.client.post(URL, {**VALID, "currency": currency, "amount": amount}, format="json")
        assert response.status_code == 201
        assert response.json()["currency"] == currency.upper()


def test_customer_input_is_validated(merchant_a):
    response = merchant_a.client.post("/payment/customers", {"email": "not-an-email"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "email"
    response = merchant_a.client.post("/payment/customers", {"email": "a@b.co", "balance": 10}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "parameter_unknown"
    assert not Customer.objects.exists()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "amount": JSON_VALUES, "currency": JSON_VALUES, "paymentMethod": JSON_VALUES, "captureMethod": JSON_VALUES,
            "customer": JSON_VALUES, "description": JSON_VALUES, "metadata": JSON_VALUES,
        },
    )
    | JSON_VALUES
)
def test_no_request_body_produces_a_server_error(merchant_a, body):
    response = merchant_a.client.post(URL, body, format="json")
    assert response.status_code in (201, 400, 402), response.content
    if response.status_code == 400:
        assert set(response.json()["error"]) >= {"type", "code", "message", "param"}
