"""Property: no hostile request makes the API fail. Hypothesis sends lone surrogates, NULs,
zero-width and bidi characters, deep nesting and charsets FlowPay does not read to the
endpoints (bodies, query strings, path ids, the Idempotency-Key header); every answer is
below 500, every refusal is in the error shape and stores nothing. (The schemathesis run in
tests/core/test_openapi_contract.py sends schema-shaped data; this sends what no schema allows.)"""

import json
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.models import IdempotencyRecord
from payments.models import Customer, Transaction
from subscriptions.models import Plan, SubscriptionSettings
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

STORED = (Transaction, Customer, Plan, WebhookEndpoint, IdempotencyRecord, SubscriptionSettings)

# Characters that break naive handling: NUL and other controls, lone surrogates, zero-width,
# bidi and BOM, non-ASCII digits, and ordinary text.
NASTY_CHARACTERS = st.one_of(
    st.sampled_from(["\x00", "\x01", "\x1f", "\x7f", "\u200b", "\u200d", "\u202e", "\ufeff", "\u00a0", "\uff14", "\u0664", "\\", '"']),
    st.characters(categories=["Cs"]),  # lone surrogates: sent as \\udXXX escapes
    st.characters(codec="utf-8"),
)
# Half the strings carry a lone surrogate for sure (random ones mostly pair up: valid text).
LONE_SURROGATES = st.sampled_from(["\ud800", "\udbff!", "\udc00", "\udfff"])
NASTY_TEXT = st.text(NASTY_CHARACTERS, max_size=24) | st.builds(
    lambda head, lone, tail: head + lone + tail, st.text(NASTY_CHARACTERS, max_size=8), LONE_SURROGATES, st.text(max_size=8)
)
SCALARS = st.one_of(NASTY_TEXT, st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none())
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY_TEXT, inner, max_size=3),
                           max_leaves=8)
NESTING = st.integers(min_value=60, max_value=3000).map(lambda depth: "[" * depth + "]" * depth)
# Mostly none declared (the body is read), sometimes one FlowPay does not read (415).
CHARSETS = st.sampled_from([None] * 30 + ["utf-8", "iso-8859-1", "us-ascii", "utf-16", "utf-32", "utf-7", "base64", "rot13", "zlib",
                                         "cp1252", "x-unknown"])

BODY_ENDPOINTS = {
    "/payment/transactions": {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"},
    "/payment/customers": {"name": "Ann"},
    "/payment/plans": {"name": "Gold", "amount": 1000, "currency": "usd", "interval": "month"},
    "/payment/subscription-settings": {"dunningFinalAction": "unpaid"},
    "/payment/webhook-endpoints": {"url": "https://example.com/hook", "enabledEvents": ["*"]},
}


@st.composite
def hostile_bodies(draw):
    """(path, body bytes, Content-Type): a valid body with one field, key or the whole body
    replaced by something hostile, in some charset."""
    path = draw(st.sampled_from(sorted(BODY_ENDPOINTS)))
    document = dict(BODY_ENDPOINTS[path])
    takes_metadata = path in ("/payment/transactions", "/payment/customers", "/payment/plans")
    target = draw(st.sampled_from([*document, *(["metadata"] * 4 if takes_metadata else []), "<new key>", "<whole body>"]))
    value = draw(st.dictionaries(NASTY_TEXT, SCALARS, max_size=3) if target == "metadata" else JSON_VALUES)
    if target == "<new key>":
        document[draw(NASTY_TEXT)] = value
    elif target != "<whole body>":
        document[target] = value
    text = json.dumps(value if target == "<whole body>" else document)  # ensure_ascii: surrogates as escapes
    if draw(st.integers(0, 4)) == 0:  # something nested deep: as one more member, or as the body
        deep = draw(NESTING)
        text = text[:-1] + (", " if text != "{}" else "") + f'"deep": {deep}}}' if text.endswith("}") else deep
    charset = draw(CHARSETS)
    try:
        raw = text.encode(charset or "utf-8")
    except (LookupError, UnicodeError):
        raw = text.encode()
    return path, raw, "application/json" + (f"; charset={charset}" if charset else "")


def _counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in STORED)


def assert_well_answered(response, before: tuple[int, ...]):
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) >= {"type", "code", "message", "param"}, error
        assert _counts() == before, "a refused request stored something"


@pytest.fixture
def api(merchant_a):
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {merchant_a.api_key}")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(attempt=hostile_bodies(), key=st.none() | NASTY_TEXT)
def test_no_hostile_body_makes_the_api_fail(api, attempt, key):
    path, raw, content_type = attempt
    before = _counts()
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key.encode("utf-8", "surrogatepass").decode("latin-1")}
    assert_well_answered(api.generic("POST", path, raw, content_type=content_type, **headers), before)


READ_PATHS = ["/payment/transactions", "/payment/customers", "/payment/refunds", "/payment/events", "/payment/invoices"]
QUERY_NAMES = st.sampled_from(["limit", "cursor", "status", "customer", "createdGte", "email", "active", "type"]) | NASTY_TEXT


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(READ_PATHS), params=st.lists(st.tuples(QUERY_NAMES, NASTY_TEXT), max_size=3),
       object_id=st.none() | NASTY_TEXT)
def test_no_hostile_query_or_path_id_makes_the_api_fail(api, path, params, object_id):
    def encoded(text: str) -> str:
        return quote(text.encode("utf-8", "surrogatepass"), safe="")  # a lone surrogate as its (invalid) UTF-8 bytes

    url = path if object_id is None else f"{path}/{encoded(object_id) or 'x'}"
    query = "&".join(f"{encoded(name)}={encoded(value)}" for name, value in params)
    before = _counts()
    assert_well_answered(api.get(f"{url}?{query}" if query else url), before)
