"""Raw card numbers are refused wherever they appear, and never echoed, logged or stored."""

import logging

import pytest
from django.db import connection

from core.carddata import contains_card_number, luhn_valid

pytestmark = pytest.mark.django_db

URL = "/payment/transactions"
PAN = "4242424242424242"
VALID = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4242424242424242", True),
        ("4242 4242 4242 4242", True),
        ("4242-4242-4242-4242", True),
        ("card 5555555555554444 exp 12/29", True),
        ("378282246310005", True),  # 15-digit Amex
        ("6011111111111117", True),
        ("4000 0566 5566 5556 12", True),  # PAN followed by more digits
        ("4242424242424241", False),  # fails Luhn
        ("424242424242", False),  # 12 digits
        ("order 1234567890123456789012", False),  # one 22-digit run is not a card
        ("+1 555-123-4567", False),
        ("", False),
    ],
)
def test_card_number_detection(text, expected):
    assert contains_card_number(text) is expected


def test_luhn():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")


def _all_database_text() -> str:
    """Every row of every FlowPay table, as text, to prove a number was stored nowhere."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            chunks.append(repr(cursor.fetchall()))
    return "\n".join(chunks)


@pytest.mark.parametrize(
    "body, param",
    [
        ({**VALID, "paymentMethod": PAN}, "paymentMethod"),
        ({**VALID, "description": f"card {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}"}, "description"),
        ({**VALID, "metadata": {"note": "4242-4242-4242-4242"}}, "metadata.note"),
        ({**VALID, "metadata": {"pan": int(PAN)}}, "metadata.pan"),
        ({**VALID, "card": {"number": PAN, "cvc": "123"}}, "card.number"),
        ({**VALID, "amount": int(PAN)}, "amount"),
    ],
)
def test_request_carrying_a_card_number_is_rejected_and_leaves_no_trace(merchant_a, caplog, body, param):
    caplog.set_level(logging.DEBUG)

    response = merchant_a.client.post(URL, body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("card_data_not_allowed", param)
    digits = PAN
    assert digits not in response.content.decode() and "4242 4242" not in response.content.decode()
    assert digits not in caplog.text and "4242-4242" not in caplog.text and "4242 4242" not in caplog.text
    database = _all_database_text()
    assert digits not in database and "4242-4242" not in database and "4242 4242" not in database


def test_card_number_in_query_string_or_customer_is_rejected(merchant_a, caplog):
    caplog.set_level(logging.DEBUG)
    listed = merchant_a.client.get(URL, {"customer": PAN})
    assert listed.status_code == 400 and listed.json()["error"]["code"] == "card_data_not_allowed"
    created = merchant_a.client.post("/payment/customers", {"name": f"Ann {PAN}"}, format="json")
    assert created.status_code == 400
    assert PAN not in caplog.text


def test_unicode_escaped_card_number_is_caught(merchant_a):
    escaped = "".join(f"\\u00{ord(c):x}" for c in PAN)
    raw = '{"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa", "description": "%s"}' % escaped
    response = merchant_a.client.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "card_data_not_allowed"


def test_tokens_and_ordinary_numbers_are_accepted(merchant_a):
    response = merchant_a.client.post(
        URL, {**VALID, "metadata": {"order": "12345", "phone": "+1 555 123 4567", "ref": "1234567890123456789012"}}, format="json"
    )
    assert response.status_code == 201


def test_log_lines_mask_card_numbers_that_reach_a_logger(json_log_lines):
    buffer = json_log_lines("django.server")
    logging.getLogger("django.server").warning('"%s" %s', f"GET /payment/transactions?customer={PAN[:8]}-{PAN[8:]} HTTP/1.1", 400)
    line = buffer.getvalue()
    assert "[card number removed]" in line and PAN[:8] not in line and "HTTP/1.1" in line


def test_mask_card_numbers_keeps_other_text():
    from core.carddata import mask_card_numbers

    assert mask_card_numbers("a 4242 4242 4242 4242 b 12345") == "a [card number removed] b 12345"


def test_a_card_number_under_a_key_with_a_nul_character_is_refused_and_audited(merchant_a):
    response = merchant_a.client.post(URL, {**VALID, "metadata": {"a\u0000b": PAN}}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "card_data_not_allowed"
    from audit.models import AuditEntry

    entry = AuditEntry.objects.get(action="security.card_data_rejected")
    assert "\x00" not in entry.details["field"] and PAN not in str(entry.details)
