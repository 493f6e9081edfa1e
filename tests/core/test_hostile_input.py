"""No input makes the API answer 500: each hostile request below is a 400 (or a 415 for a
charset FlowPay does not read) in the one error shape, and stores nothing."""

import codecs
import gzip
import hashlib
import hmac
import io
import json
import time
import uuid
import wsgiref.util

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from accounts.services import staff_token_create
from audit.models import AuditEntry
from core.actors import Actor
from core.api.parsers import MAX_JSON_DEPTH, json_depth_exceeds, strict_json_loads
from core.models import IdempotencyRecord
from flowpay.wsgi import application
from gateway_events.models import InboundEvent
from gateways import registry
from gateways.credentials import credentials_reload
from gateways.stripe.adapter import StripeGateway
from payments.models import Customer, Transaction
from subscriptions.models import Plan, SubscriptionSettings
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "/payment/transactions"
VALID = '{"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"%s}'
SURROGATE = "\\ud800"  # as a JSON escape: the only way to send a lone surrogate in UTF-8


def nothing_stored() -> bool:
    return not (
        Transaction.objects.exists() or Customer.objects.exists() or Plan.objects.exists() or IdempotencyRecord.objects.exists()
        or WebhookEndpoint.objects.exists() or SubscriptionSettings.objects.exists() or InboundEvent.objects.exists()
        or AuditEntry.objects.exclude(action__regex=r"^(merchant|api_key|staff_token|staff_user|security)\.").exists()
    )


@pytest.fixture
def api(merchant_a):
    """A client that answers 500s instead of raising the server's exception."""
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {merchant_a.api_key}")


def assert_refused(response, status: int = 400, code: str | None = None, param: str | None = "unset"):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) >= {"type", "code", "message", "param"} and error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code, error
    if param != "unset":
        assert error["param"] == param, error
    assert nothing_stored()
    return error


# --- charsets and content encodings ----------------------------------------------------------
UNREADABLE_CHARSETS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-7", "utf-8-sig", "cp1252", "cp500",
                       "base64", "rot13", "zlib", "uu", "quopri", "hex", "bz2", "punycode", "idna", "unicode_escape",
                       "no-such-charset", ""]


def encoded(document: str, charset: str) -> bytes:
    """The document in `charset` where Python can write it (the declaration is what is refused)."""
    try:
        return document.encode(charset)
    except (LookupError, UnicodeError):
        try:
            return codecs.encode(document.encode(), charset)
        except (LookupError, TypeError, ValueError, AttributeError):
            return document.encode()


@pytest.mark.parametrize("charset", UNREADABLE_CHARSETS)
def test_a_body_in_a_charset_flowpay_does_not_read_is_415(api, charset):
    response = api.generic("POST", URL, encoded(VALID % "", charset), content_type=f"application/json; charset={charset}")
    assert_refused(response, 415, "unsupported_media_type", None)


def test_a_declared_charset_is_refused_on_a_read_too(api):
    # Django decodes the query string in the declared charset.
    assert_refused(api.get(URL, {"limit": "1"}, CONTENT_TYPE="application/json; charset=utf-16"), 415, "unsupported_media_type")


@pytest.mark.parametrize("charset", UNREADABLE_CHARSETS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_wsgi_application_refuses_unreadable_charsets_before_django_reads_the_request(merchant_a, charset, method):
    # With a query string, Django itself fails on charset=base64 (and other codecs that are not
    # text encodings) while it builds the request, before any middleware: flowpay.wsgi answers.
    body = encoded(VALID % "", charset) if method == "POST" else b""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": URL, "QUERY_STRING": "limit=1", "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": f"application/json; charset={charset}",
               "HTTP_AUTHORIZATION": f"Bearer {merchant_a.api_key}"}
    wsgiref.util.setup_testing_defaults(environ)
    started = []
    chunks = application(environ, lambda status, headers: started.append((status, dict(headers))))
    (status, headers), = started
    assert status.startswith("415 ") and headers["Content-Type"] == "application/json"
    error = json.loads(b"".join(chunks))["error"]
    assert error["code"] == "unsupported_media_type" and set(error) >= {"type", "message", "param"}
    assert nothing_stored()


@pytest.mark.django_db(transaction=True)  # the real handler closes connections between requests
def test_the_wsgi_application_serves_readable_requests(merchant_a):
    body = (VALID % "").encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": URL, "QUERY_STRING": "", "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json; charset=utf-8",
               "HTTP_AUTHORIZATION": f"Bearer {merchant_a.api_key}"}
    wsgiref.util.setup_testing_defaults(environ)
    started = []
    b"".join(application(environ, lambda status, headers: started.append(status)))
    assert started == ["201 Created"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-custom"])
def test_a_compressed_body_is_415(api, encoding):
    response = api.generic("POST", URL, gzip.compress((VALID % "").encode()), content_type="application/json",
                           HTTP_CONTENT_ENCODING=encoding)
    assert_refused(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("charset", ["utf-8", "UTF8", "us-ascii", "iso-8859-1", "latin-1"])
def test_the_charsets_flowpay_reads_are_read(api, charset):
    response = api.generic("POST", URL, (VALID % "").encode(charset), content_type=f"application/json; charset={charset}")
    assert response.status_code == 201, response.content


def test_a_latin1_body_is_read_as_latin1(api):
    response = api.generic("POST", URL, (VALID % ', "description": "\u00e9t\u00e9"').encode("latin-1"),
                           content_type="application/json; charset=iso-8859-1")
    assert response.status_code == 201 and response.json()["description"] == "\u00e9t\u00e9"


def test_a_non_ascii_byte_in_an_ascii_body_is_a_parse_error(api):
    response = api.generic("POST", URL, (VALID % ', "description": "\u00e9"').encode("latin-1"), content_type="application/json; charset=ascii")
    assert_refused(response, 400, "invalid_json")


# --- lone surrogates -----------------------------------------------------------------------------
@pytest.mark.parametrize("path, body, param", [
    (URL, VALID % f', "metadata": {{"{SURROGATE}": "x"}}', "metadata"),
    (URL, VALID % f', "metadata": {{"k{SURROGATE}k": "x", "ok": 1}}', "metadata"),
    (URL, VALID % f', "metadata": {{"k": "{SURROGATE}"}}', "metadata.k"),
    (URL, VALID % f', "metadata": {{"k": "a{SURROGATE}b"}}', "metadata.k"),
    (URL, '{"amount": 1999, "currency": "%s", "paymentMethod": "pm_card_visa"}' % SURROGATE, "currency"),
    (URL, VALID % f', "captureMethod": "{SURROGATE}"', "captureMethod"),
    (URL, VALID % f', "description": "{SURROGATE}"', "description"),
    (URL, VALID % f', "customer": "cus_{SURROGATE}"', "customer"),
    (URL, VALID % f', "{SURROGATE}": 1', None),
    (URL, VALID % f', "x{SURROGATE}": [1, 2]', None),
    (URL, VALID % f', "extra": ["{SURROGATE}"]', "extra[0]"),
    (URL, f'"{SURROGATE}"', None),
    (URL, f'["{SURROGATE}"]', "[0]"),
    (URL, VALID % ', "metadata": {"k": "\\udfff\\ud800"}', "metadata.k"),  # reversed pair: still lone
    ("/payment/plans", '{"name": "Gold", "amount": 100, "currency": "usd", "interval": "%s"}' % SURROGATE, "interval"),
    ("/payment/plans", '{"name": "%s", "amount": 100, "currency": "usd", "interval": "month"}' % SURROGATE, "name"),
    ("/payment/customers", '{"name": "Ann", "metadata": {"%s": 1}}' % SURROGATE, "metadata"),
    ("/payment/customers", '{"email": "a%s@example.com"}' % SURROGATE, "email"),
    ("/payment/subscription-settings", '{"dunningFinalAction": "%s"}' % SURROGATE, "dunningFinalAction"),
    ("/payment/webhook-endpoints", '{"url": "https://example.com/%s", "enabledEvents": ["*"]}' % SURROGATE, "url"),
    ("/payment/webhook-endpoints", '{"url": "https://example.com/h", "enabledEvents": ["%s"]}' % SURROGATE, "enabledEvents[0]"),
])
def test_a_lone_surrogate_anywhere_is_a_400_naming_where(api, path, body, param):
    response = api.generic("POST", path, body.encode(), content_type="application/json")
    assert_refused(response, 400, "surrogate_characters_not_allowed", param)


def test_a_proper_surrogate_pair_is_text(api):
    response = api.generic("POST", URL, (VALID % ', "description": "\\ud83d\\ude00"').encode(), content_type="application/json")
    assert response.status_code == 201 and response.json()["description"] == "\U0001f600"


# --- deep nesting --------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 2000, 5000])
@pytest.mark.parametrize("shape", ["arrays", "objects", "in_metadata", "mixed"])
def test_json_nested_too_deep_is_a_parse_error(api, depth, shape):
    body = {
        "arrays": "[" * depth + "]" * depth,
        "objects": '{"a":' * depth + "1" + "}" * depth,
        "in_metadata": VALID % (', "metadata": {"k": ' + "[" * depth + "]" * depth + "}"),
        "mixed": '{"a":[' * (depth // 2 + 1) + "1" + "]}" * (depth // 2 + 1),
    }[shape]
    assert_refused(api.generic("POST", URL, body.encode(), content_type="application/json"), 400, "invalid_json")


def test_the_depth_limit_counts_brackets_outside_strings_only():
    assert not json_depth_exceeds('{"a": "' + "[" * 500 + '"}')
    assert not json_depth_exceeds("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    assert json_depth_exceeds("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    assert json_depth_exceeds('["\\"", ' + "[" * (MAX_JSON_DEPTH + 1))  # an escaped quote does not end the string
    assert isinstance(strict_json_loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH), list)


def test_nesting_within_the_limit_reaches_the_fields(api):
    body = VALID % (', "metadata": {"k": ' + "[" * 60 + "]" * 60 + "}")
    assert_refused(api.generic("POST", URL, body.encode(), content_type="application/json"), 400, "invalid_metadata")


# --- NUL in a path id ----------------------------------------------------------------------------
def path_operations():
    spec = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in spec["paths"].items():
        if "{" in path:
            for method in operations:
                yield method.upper(), path


@pytest.mark.parametrize("method, path", sorted(set(path_operations())), ids=lambda v: v)
@pytest.mark.parametrize("id_value", ["%00", "x%00", "txn_%00abc", "%00%00"])
def test_nul_in_any_path_id_is_a_400_naming_the_parameter(api, method, path, id_value):
    name = path[path.index("{") + 1:path.index("}")]
    url = path.replace("{" + name + "}", id_value)
    client = api
    if "/approve" in path or "/reject" in path or "/outcome" in path or path.startswith("/payment/reconciliation/"):
        # staff-only operations
        admin = staff_token_create(username="hostile-admin", role="admin", actor=Actor.system("test"))
        client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {admin.secret}")
    response = client.generic(method, url, b"{}" if method != "GET" else b"", content_type="application/json")
    camel = name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:])
    assert_refused(response, 400, "null_characters_not_allowed", camel)


# --- signed inbound webhooks ---------------------------------------------------------------------
SECRET = "whsec_hostile_test_secret"


@pytest.fixture
def stripe_webhooks(settings, monkeypatch):
    settings.FLOWPAY_GATEWAYS = ["simulator", "stripe"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "stripe", StripeGateway)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    credentials_reload()
    registry.gateway_named.cache_clear()
    yield
    registry.gateway_named.cache_clear()
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    credentials_reload()


def signed_delivery(client, payload: bytes):
    timestamp = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return client.post("/webhooks/stripe", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=f"t={timestamp},v1={mac}")


def stripe_document(*, event_id: str = "", event_type: str = "payment_intent.succeeded", obj: str = '{"id": "pi_1", "object": "payment_intent"}'):
    return ('{"id": "%s", "object": "event", "created": %d, "livemode": false, "type": "%s", "data": {"object": %s}}'
            % (event_id or f"evt_{uuid.uuid4().hex[:20]}", int(time.time()), event_type, obj)).encode()


@pytest.mark.parametrize("document", [
    stripe_document(event_id="evt_\\u0000nul"),
    stripe_document(event_id=f"evt_{SURROGATE}"),
    stripe_document(event_type="payment_intent.\\u0000"),
    stripe_document(event_type=f"payment_intent.{SURROGATE}"),
    stripe_document(obj='{"id": "pi_\\u0000", "object": "payment_intent"}'),
    stripe_document(obj='{"id": "pi_1", "object": "payment_intent", "description": "a\\u0000b"}'),
    stripe_document(obj='{"id": "pi_1", "object": "payment_intent", "metadata": {"k\\u0000": "v"}}'),
    stripe_document(obj='{"id": "pi_1", "object": "payment_intent", "metadata": {"k": "%s"}}' % SURROGATE),
    stripe_document(obj='{"id": "pi_1", "object": "%s"}' % SURROGATE),
    stripe_document(obj='{"id": "pi_1", "object": "payment_intent", "x": ' + "[" * 3000 + "]" * 3000 + "}"),
    stripe_document(obj='{"id": "pi_1", "object": "payment_intent", "x": ' + "[" * 900 + "]" * 900 + "}"),
], ids=["nul_id", "surrogate_id", "nul_type", "surrogate_type", "nul_object_id", "nul_value", "nul_key", "surrogate_value",
        "surrogate_object", "nested_3000", "nested_900"])
def test_a_signed_webhook_carrying_unstorable_text_is_a_400_and_stores_nothing(client, stripe_webhooks, document):
    client.raise_request_exception = False
    response = signed_delivery(client, document)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "webhook_payload_invalid" and set(error) >= {"type", "code", "message", "param"}
    assert not InboundEvent.objects.exists()


def test_a_signed_ordinary_webhook_is_still_stored(client, stripe_webhooks, celery_eager):
    response = signed_delivery(client, stripe_document(obj='{"id": "pi_1", "object": "payment_intent", "description": "caf\\u00e9"}'))
    assert response.status_code == 200, response.content
    assert InboundEvent.objects.get().payload["description"] == "caf\u00e9"


# --- subscription settings -----------------------------------------------------------------------
@pytest.mark.parametrize("value", ['"explode"', '"UNPAID"', '""', "null", "1", "true", '["unpaid"]', '{"a": 1}', '"unpaid\\u0000"',
                                   f'"{SURROGATE}"', '"' + "x" * 10000 + '"'])
def test_an_unknown_subscription_setting_is_a_400(api, value):
    response = api.generic("POST", "/payment/subscription-settings", ('{"dunningFinalAction": %s}' % value).encode(),
                           content_type="application/json")
    error = assert_refused(response, 400, param="dunningFinalAction")
    assert error["code"] in ("invalid_choice", "null", "surrogate_characters_not_allowed")


@pytest.mark.parametrize("body", ['{}', '{"dunningFinalAction": "unpaid", "other": 1}', '{"%s": "unpaid"}' % SURROGATE, '[]', '"unpaid"'])
def test_other_bad_subscription_settings_are_400(api, body):
    assert_refused(api.generic("POST", "/payment/subscription-settings", body.encode(), content_type="application/json"), 400)


# --- cursors and limits --------------------------------------------------------------------------
@pytest.mark.parametrize("cursor", [
    "' OR 1=1 --", "1; DROP TABLE payments_transaction", "bz0xJnA9JyBPUiAxPTEgLS0=",  # a DRF cursor with SQL as position
    "cD0yMDI1LTAxLTAxKzAwJTNBMDAlM0EwMCUyQjAwJTNBMDA=", "", "%00", "\u00e9", "a" * 5000, "eyJvIjowfQ:bad-signature",
])
def test_a_cursor_flowpay_did_not_issue_is_a_400(api, make_payment, merchant_a, cursor):
    make_payment(merchant_a)
    response = api.get(URL, {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == "cursor"


def test_an_issued_cursor_works_and_a_tampered_one_does_not(api, make_payment, merchant_a):
    for _ in range(3):
        make_payment(merchant_a)
    first = api.get(URL, {"limit": 2}).json()
    cursor = first["nextCursor"]
    assert cursor and all(c.isalnum() or c in "-_:" for c in cursor)  # pasted into a URL as is
    second = api.get(f"{URL}?limit=2&cursor={cursor}")
    assert second.status_code == 200 and len(second.json()["data"]) == 1
    body, _, signature = cursor.rpartition(":")
    tampered = body[:-1] + ("A" if body[-1] != "A" else "B") + ":" + signature
    assert api.get(URL, {"cursor": tampered}).status_code == 400


@pytest.mark.parametrize("limit", ["\u00b2", "\u0661\u0660", "\uff11", "1.0", "-1", "0", "101", " 1", "1e1", "%00"])
def test_a_limit_that_is_not_ascii_digits_in_range_is_a_400(api, limit):
    response = api.get(URL, {"limit": limit})
    assert response.status_code == 400 and response.json()["error"]["param"] == "limit"
