"""Card numbers in disguise are refused like plain ones, and none reaches the database or a
log line: each disguise carries its own Luhn-valid test PAN, planted in a request; the
requests are refused (400 card_data_not_allowed, or 415 for a body in a charset FlowPay does
not read) and a pg_dump of the test database and the captured logs, read as digits after
normalisation, hold none of the planted numbers."""

import codecs
import gzip
import json
import logging
import random
import subprocess
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.db import connection

from core.carddata import contains_card_number, find_card_number_path, luhn_valid, mask_card_numbers, number_is_card_number
from core.models import IdempotencyRecord
from payments.models import Customer, Transaction

URL = "/payment/transactions"
VALID = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}


def planted_pan(serial: int, *, prefix: str = "4", length: int = 16) -> str:
    """A distinct Luhn-valid number per disguise: random digits (seeded by `serial`), so that
    no run of ids or timestamps in a dump can spell one by chance."""
    digits = random.Random(serial)
    body = prefix + "".join(digits.choice("0123456789") for _ in range(length - 1 - len(prefix)))
    return next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


def groups(pan: str, sizes=(4, 4, 4, 4)) -> list[str]:
    parts, start = [], 0
    for size in sizes:
        parts.append(pan[start:start + size])
        start += size
    if start < len(pan):
        parts.append(pan[start:])
    return parts


def in_script(pan: str, zero: int) -> str:
    """The PAN in another script's decimal digits (zero: the code point of its 0)."""
    return "".join(chr(zero + int(d)) for d in pan)


# Separators between digit groups, as an attacker would try them.
SEPARATORS = {
    "dots": ".", "two_spaces": "  ", "slashes": "/", "underscores": "_", "tabs": "\t", "newlines": "\n",
    "crlf": "\r\n", "zero_width_space": "\u200b", "zero_width_joiner": "\u200d", "word_joiner": "\u2060",
    "nbsp": "\u00a0", "narrow_nbsp": "\u202f", "en_dash": "\u2013", "em_dash": "\u2014", "commas": ",",
    "comma_space": ", ", "colons": ":", "soft_hyphen": "\u00ad", "ideographic_space": "\u3000",
}
SCRIPTS = {"fullwidth": 0xFF10, "arabic_indic": 0x0660, "persian": 0x06F0, "devanagari": 0x0966, "bengali": 0x09E6,
           "math_bold": 0x1D7CE, "thai": 0x0E50}


@dataclass(frozen=True)
class Disguise:
    name: str
    pan: str
    method: str
    path: str
    body: bytes | None = None
    content_type: str = "application/json"
    headers: dict | None = None
    status: int = 400


def _json(data) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


class Planter:
    """Makes the disguises, each with its own planted number."""

    def __init__(self):
        self.made: list[Disguise] = []
        self.serial = 0

    def pan(self, **kwargs) -> str:
        self.serial += 1
        return planted_pan(self.serial, **kwargs)

    def add(self, name: str, number: str, method: str, path: str, body: bytes | None = None, **kwargs) -> None:
        self.made.append(Disguise(name, number, method, path, body, **kwargs))

    def body(self, name: str, number: str, data, path: str = URL) -> None:
        self.add(name, number, "POST", path, _json(data))

    def raw(self, name: str, number: str, text: str) -> None:
        """JSON written out by hand (json.dumps would print numbers its own way)."""
        self.add(name, number, "POST", URL, text.encode())


def _text_disguises(plant: Planter) -> None:
    for name, separator in SEPARATORS.items():
        number = plant.pan()
        plant.body(f"description_{name}", number, {**VALID, "description": f"card {separator.join(groups(number))} thanks"})
    for name, zero in SCRIPTS.items():
        number = plant.pan()
        plant.body(f"metadata_{name}_digits", number, {**VALID, "metadata": {"note": in_script(number, zero)}})
    number = plant.pan()
    mixed = "".join(chr(0xFF10 + int(d)) if i % 2 else d for i, d in enumerate(number))  # every other digit fullwidth
    plant.body("mixed_scripts", number, {**VALID, "description": mixed})
    number = plant.pan()
    plant.body("mixed_separators", number, {**VALID, "description": "{}.{} {}/{}".format(*groups(number))})
    number = plant.pan(prefix="3", length=15)
    plant.body("amex_4_6_5", number, {**VALID, "description": " ".join(groups(number, (4, 6, 5)))})
    number = plant.pan(length=19)
    plant.body("nineteen_digits_dotted", number, {**VALID, "metadata": {"n": ".".join(groups(number, (4, 4, 4, 4, 3)))}})
    number = plant.pan()
    plant.body("customer_name_nbsp", number, {"name": "\u00a0".join(groups(number))}, path="/payment/customers")
    number = plant.pan()
    plant.body("metadata_key", number, {**VALID, "metadata": {"_".join(groups(number)): "x"}})
    number = plant.pan()
    plant.body("unknown_parameter", number, {**VALID, "card": {"number": ".".join(groups(number))}})
    number = plant.pan()
    plant.body("list_of_groups", number, {**VALID, "metadata": {"k": "v"}, "extra": groups(number)})
    number = plant.pan()
    plant.body("list_of_integer_groups", number, {**VALID, "extra": [int(g) for g in groups(number)]})


def _number_disguises(plant: Planter) -> None:
    head = '{"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa", '
    number = plant.pan()
    plant.raw("json_integer", number, head + '"metadata": {"n": %s}}' % number)
    number = plant.pan()
    plant.raw("json_float_exponent", number, head + '"metadata": {"n": %s.%se15}}' % (number[0], number[1:]))
    number = plant.pan()
    plant.raw("json_float_integral", number, head + '"metadata": {"n": %s.0}}' % number)
    number = plant.pan()
    plant.raw("json_float_mantissa", number, head + '"metadata": {"n": %s.%s}}' % (number[0], number[1:]))
    number = plant.pan()
    plant.raw("amount_as_exponent", number,
              '{"amount": %s.%se15, "currency": "usd", "paymentMethod": "pm_card_visa"}' % (number[0], number[1:]))
    number = plant.pan()
    escaped = "".join(f"\\u{ord(c):04x}" for c in in_script(number, 0xFF10))
    plant.raw("json_escaped_fullwidth", number, head + '"description": "%s"}' % escaped)


def _request_part_disguises(plant: Planter) -> None:
    """The URL path (access logs), the query string, the stored Idempotency-Key header."""
    number = plant.pan()
    plant.add("path_plain", number, "GET", f"{URL}/{number}")
    number = plant.pan()
    plant.add("path_dotted", number, "GET", f"/payment/customers/{'.'.join(groups(number))}")
    number = plant.pan()
    plant.add("path_fullwidth", number, "GET", f"{URL}/{quote(in_script(number, 0xFF10))}/capture")
    number = plant.pan()
    plant.add("query_arabic_indic", number, "GET", f"{URL}?customer={quote(in_script(number, 0x0660))}")
    number = plant.pan()
    plant.add("query_key", number, "GET", f"{URL}?{quote('_'.join(groups(number)))}=1")
    number = plant.pan()
    plant.add("idempotency_key", number, "POST", URL, _json(VALID), headers={"HTTP_IDEMPOTENCY_KEY": "-".join(groups(number))})
    number = plant.pan()
    plant.add("idempotency_key_dots", number, "POST", URL, _json(VALID),
              headers={"HTTP_IDEMPOTENCY_KEY": f"order.{'.'.join(groups(number))}"})


def _charset_disguises(plant: Planter) -> None:
    # A charset FlowPay reads faithfully (latin-1: ¹²³ are digits once normalised) ...
    pick = random.Random(0)
    number = next(p for p in ("3" + "".join(pick.choice("123") for _ in range(15)) for _ in range(1000)) if luhn_valid(p))
    superscripts = number.translate(str.maketrans("123", "\u00b9\u00b2\u00b3"))
    latin1 = _json({**VALID, "description": superscripts}).decode().encode("latin-1")
    plant.add("latin1_superscripts", number, "POST", URL, latin1,
              content_type="application/json; charset=iso-8859-1")
    # ... and those it does not: refused unread (415).
    for charset in ("utf-16", "utf-16-be", "utf-32", "utf-7", "cp1252", "utf-8-sig"):
        number = plant.pan()
        plant.add(f"charset_{charset}", number, "POST", URL, _json({**VALID, "description": number}).decode().encode(charset),
                  content_type=f"application/json; charset={charset}", status=415)
    for charset in ("base64", "rot13", "zlib", "uu", "quopri", "hex", "bz2"):
        number = plant.pan()
        document = _json({**VALID, "description": number})
        encoded = codecs.encode(document.decode(), charset).encode() if charset == "rot13" else codecs.encode(document, charset)
        plant.add(f"charset_{charset}", number, "POST", URL, encoded, content_type=f"application/json; charset={charset}",
                  status=415)
    number = plant.pan()
    plant.add("content_encoding_gzip", number, "POST", URL, gzip.compress(_json({**VALID, "description": number})),
              headers={"HTTP_CONTENT_ENCODING": "gzip"}, status=415)


def _disguises() -> list[Disguise]:
    plant = Planter()
    for make in (_text_disguises, _number_disguises, _request_part_disguises, _charset_disguises):
        make(plant)
    return plant.made


DISGUISES = _disguises()


def send(client, disguise: Disguise):
    if disguise.method == "GET":
        return client.get(disguise.path, **(disguise.headers or {}))
    headers = disguise.headers or {}
    return client.generic(disguise.method, disguise.path, disguise.body, content_type=disguise.content_type, **headers)


def nothing_stored() -> bool:
    return not (Transaction.objects.exists() or Customer.objects.exists() or IdempotencyRecord.objects.exists())


def test_every_planted_number_is_distinct_and_luhn_valid():
    pans = [d.pan for d in DISGUISES]
    assert len(set(pans)) == len(pans) and all(luhn_valid(p) and 13 <= len(p) <= 19 for p in pans)


@pytest.mark.django_db
@pytest.mark.parametrize("disguise", DISGUISES, ids=lambda d: d.name)
def test_a_card_number_in_disguise_is_refused(merchant_a, disguise):
    response = send(merchant_a.client, disguise)

    assert response.status_code == disguise.status, response.content
    error = response.json()["error"]
    assert set(error) >= {"type", "code", "message", "param"} and error["type"] == "invalid_request_error"
    assert error["code"] == ("card_data_not_allowed" if disguise.status == 400 else "unsupported_media_type")
    assert disguise.pan not in digits_of(response.content.decode())
    assert nothing_stored()


def digits_of(text: str) -> str:
    """Every digit of `text`, in order, after NFKC and folding Unicode digits to ASCII: what
    is left of a planted number whatever its separators or script."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(str(unicodedata.decimal(c)) for c in text if c.isdecimal())


def database_dump() -> str:
    settings = connection.settings_dict
    command = ["pg_dump", "--data-only", "--no-owner", "-h", settings["HOST"] or "127.0.0.1", "-p", str(settings["PORT"] or 5432),
               "-U", settings["USER"] or "postgres", settings["NAME"]]
    env = {"PGPASSWORD": settings["PASSWORD"] or "", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(command, capture_output=True, text=True, check=True, env=env, timeout=120).stdout


@pytest.mark.django_db(transaction=True)
def test_no_planted_number_reaches_the_database_or_the_logs(merchant_a, caplog, json_log_lines):
    caplog.set_level(logging.DEBUG)
    written = json_log_lines("")  # what the configured console handler writes
    for disguise in DISGUISES:
        assert send(merchant_a.client, disguise).status_code == disguise.status, disguise.name
    # A request that is stored, to prove the dump holds this test's committed rows.
    marker = merchant_a.client.post("/payment/customers", {"name": "Marker 20260101"}, format="json")
    assert marker.status_code == 201

    dump = database_dump()
    assert "Marker 20260101" in dump and "security.card_data_rejected" in dump
    stored, logged, console = digits_of(dump), digits_of(caplog.text), digits_of(written.getvalue())
    assert "20260101" in stored and "card data" in caplog.text and "card data" in written.getvalue()  # the search sees them
    leaked = [(d.name, where) for d in DISGUISES for where, text in (("database", stored), ("logs", logged), ("console", console))
              if d.pan in text]
    assert not leaked


# --- the detector itself ------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "2025-01-31 12:00:00", "2025-01-31 12:00:00.123456", "shipped 2025-01-31, due 2025-02-28", "2025-01-31T12:00:00Z",
    "+1 (555) 123-4567", "order 1234567890123456789012", "v1.2.3", "12:30 to 14:45", "pi 3.14159",
])
def test_ordinary_text_is_not_a_card_number(text):
    assert not contains_card_number(text)


@pytest.mark.parametrize("value, expected", [
    (4111111111111111, True),
    (Decimal("4.111111111111111e15"), True),
    (4.111111111111111e15, True),
    (Decimal("4111111111111111.0"), True),
    (Decimal("4.111111111111111"), True),  # its significant digits are the PAN
    (Decimal("4.111111111111112e15"), False),  # fails Luhn
    (Decimal("0.1234567890123456"), False),  # a long mantissa failing Luhn is a number
    (Decimal("0.1234567890123452"), True),  # ... one passing it is not
    (3.141592653589793, False),
    (Decimal("1E+400"), False),
    (True, False),
])
def test_json_numbers_are_judged_by_their_value_and_digits(value, expected):
    assert number_is_card_number(value) is expected


def test_a_long_float_failing_luhn_is_accepted_even_when_its_fraction_passes(merchant_a):
    # 12.xxxxxxxxxxxxx: the 13 digits after the point pass the Luhn check, the number's 15
    # significant digits do not. Only the latter make a JSON number a card number.
    fraction = next(f for f in (f"{n:013d}" for n in range(10**12, 10**12 + 1000)) if luhn_valid(f) and not luhn_valid("12" + f))
    raw = '{"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa", "metadata": {"ratio": 12.%s}}' % fraction
    response = merchant_a.client.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["metadata"] == {"ratio": float(f"12.{fraction}")}


def test_masking_keeps_the_text_around_a_disguised_number():
    assert mask_card_numbers("a ４１１１\u200b１１１１ 1111.1111 b") == "a [card number removed] b"
    assert find_card_number_path({"a": [{"b": "4111\u20131111\u20131111\u20131111"}]}) == "a[0].b"
