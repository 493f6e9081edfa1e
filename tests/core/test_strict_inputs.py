"""Inputs are read as the OpenAPI schema states them: JSON strings for text, true/false for
flags (in a body and in a query string), metadata numbers within +-2**53, email addresses
by one pattern; and the schema states the rules validate() adds."""

import re

import pytest
from django.core.validators import validate_email
from drf_spectacular.generators import SchemaGenerator

from core.api.serializers import EMAIL_PATTERN, NOT_BLANK_PATTERN
from payments.models import Customer

pytestmark = pytest.mark.django_db

URL = "/payment/transactions"
VALID = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}


@pytest.mark.parametrize("path, body, param", [
    (URL, {**VALID, "description": 42}, "description"),
    (URL, {**VALID, "paymentMethod": 4242}, "paymentMethod"),
    ("/payment/customers", {"name": 12.5}, "name"),
    ("/payment/customers", {"email": ["a@example.com"]}, "email"),
    ("/payment/webhook-endpoints", {"url": "https://example.com/h", "enabledEvents": [1]}, "enabledEvents"),
    ("/payment/subscriptions/sub_x/cancel", {"atPeriodEnd": "yes"}, "atPeriodEnd"),
    ("/payment/subscriptions/sub_x/cancel", {"atPeriodEnd": 1}, "atPeriodEnd"),
])
def test_a_body_takes_strings_for_text_and_booleans_for_flags(merchant_a, path, body, param):
    response = merchant_a.client.post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("invalid", param)


@pytest.mark.parametrize("value", ["yes", "1", "", "True", "null"])
def test_a_query_flag_is_true_or_false(merchant_a, value):
    response = merchant_a.client.get(f"/payment/plans?active={value}")
    assert response.status_code == 400 and response.json()["error"]["param"] == "active"


def test_query_flags_true_and_false_are_read(merchant_a):
    assert merchant_a.client.get("/payment/plans?active=true").status_code == 200
    assert merchant_a.client.get("/payment/plans?active=false").status_code == 200


@pytest.mark.parametrize("number", [2**53 + 1, -(2**53) - 1, 1e20, -3.4e38])
def test_metadata_numbers_beyond_2_53_are_refused(merchant_a, number):
    response = merchant_a.client.post(URL, {**VALID, "metadata": {"n": number}}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_metadata"


@pytest.mark.parametrize("address, accepted", [
    ("ann@example.com", True), ("x.y+z@sub.example.co", True), ("", True),
    ("a@b.c", False), ("a@0.00", False), ("a..b@example.com", False), ("a@-x.com", False), ("not-an-email", False),
])
def test_an_email_address_is_what_the_schema_says(merchant_a, address, accepted):
    response = merchant_a.client.post("/payment/customers", {"email": address}, format="json")
    assert (response.status_code == 201) is accepted, response.content
    assert Customer.objects.exists() is accepted


@pytest.mark.parametrize("address", ["ann@example.com", "a.b-c@d-e.example.org", "x@y.zz", "q'r@example.travel"])
def test_the_email_pattern_is_no_wider_than_django_s_validator(address):
    assert re.match(EMAIL_PATTERN, address)
    validate_email(address)  # raises if Django refuses what the schema allows


@pytest.mark.parametrize("text, blank", [(" ", True), ("\r\n\t", True), ("\x1c\x85\u3000", True), ("a", False), (" \ufeff ", False)])
def test_the_not_blank_pattern_matches_what_drf_keeps(text, blank):
    assert (re.search(NOT_BLANK_PATTERN, text) is None) is blank
    assert (text.strip() == "") is blank


@pytest.fixture(scope="module")
def spec():
    return SchemaGenerator().get_schema(request=None, public=True)


def _component(spec, operation) -> dict:
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_request_bodies_refuse_unknown_properties_and_state_validate_s_rules(spec):
    paths = spec["paths"]
    bodies = [op for ops in paths.values() for op in ops.values() if "requestBody" in op]
    assert bodies and all(_component(spec, op).get("additionalProperties") is False for op in bodies)
    update = paths["/payment/subscriptions/{subscription_id}"]["post"]
    assert update["requestBody"]["required"] and _component(spec, update)["minProperties"] == 1
    evidence = paths["/payment/chargebacks/{chargeback_id}/evidence"]["post"]
    assert evidence["requestBody"]["required"] and len(_component(spec, evidence)["anyOf"]) == 2
    plan = _component(spec, paths["/payment/plans"]["post"])
    assert {branch["properties"]["intervalCount"]["maximum"] for branch in plan["anyOf"]} == {1095, 156, 36, 3}


def test_query_parameters_are_camel_case_and_never_null(spec):
    for path, ops in spec["paths"].items():
        for op in ops.values():
            for parameter in op.get("parameters", []):
                if parameter["in"] == "query":
                    assert "_" not in parameter["name"] and "nullable" not in parameter["schema"], (path, parameter)
