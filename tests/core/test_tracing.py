"""OpenTelemetry tracing (core/observability/tracing.py): one trace from the merchant's HTTP
request through the database, the Celery publish and the task, to the gateway's HTTP call;
FlowPay ids on the spans and nothing secret in any attribute; the trace id in the JSON logs;
nothing imported when tracing is off.

The spans go to an in-memory exporter through the same sanitizing exporter production uses.
The refund task travels through the real Redis broker to a Celery worker running in a thread
of this process (so its spans reach the same exporter), which calls Stripe (localstripe)
over real HTTP."""

import json
import os
import re
import subprocess
import sys
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connections
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core.carddata import contains_card_number
from core.observability.tracing import sanitize_attributes, tracing_start, tracing_stop
from flowpay.celery import app as celery_app
from gateways import registry
from gateways.credentials import gateway_credentials
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set
from gateways.stripe.adapter import StripeGateway
from refunds.models import Refund
from refunds.tasks import refund_execute_task

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
SECRET_WORDS = ("authorization", "password", "secret", "token", "cookie", "email", "api_key", "apikey")
CUSTOMER_EMAIL = "jane.doe@example.com"
PAN = "4242424242424242"


@pytest.fixture
def spans():
    """Tracing on, into memory, for this test; connections reopened so psycopg is traced
    (so the tests using it are transactional: a connection closed mid-test loses its data)."""
    exporter = InMemorySpanExporter()
    connections.close_all()
    tracing_start(process="test", exporter=exporter, set_global=False)
    yield exporter
    tracing_stop()
    connections.close_all()


@pytest.fixture
def stripe_primary(stripe_gateway, settings, monkeypatch):
    settings.FLOWPAY_GATEWAYS = ["stripe"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "stripe", StripeGateway)
    registry.gateway_named.cache_clear()
    yield stripe_gateway
    registry.gateway_named.cache_clear()


@pytest.fixture
def refund_worker(monkeypatch):
    """A Celery worker (solo pool, a thread of this process) on a private queue, to which
    `refunds.execute` is sent through the real broker."""
    queue = f"test-tracing-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setattr(refund_execute_task, "delay",
                        lambda refund_id: refund_execute_task.apply_async(args=[refund_id], queue=queue))
    with start_worker(celery_app, pool="solo", concurrency=1, perform_ping_check=False, queues=[queue],
                      loglevel="WARNING", shutdown_timeout=20):
        yield queue


def _wait_for(predicate, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _ancestors(span, by_id) -> list:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def _all_strings(span):
    """Every attribute key and value of a span and of its events (names included)."""
    yield span.name
    for attributes in [span.attributes, *(event.attributes for event in span.events)]:
        for key, value in (attributes or {}).items():
            yield key
            for item in value if isinstance(value, (list, tuple)) else [value]:
                yield str(item)
    if span.status.description:
        yield span.status.description


@pytest.mark.django_db(transaction=True)
def test_one_trace_follows_a_refund_from_the_api_request_through_the_celery_task_to_the_gateway_http_call(
    spans, stripe_primary, localstripe_url, merchant_a, make_payment, refund_worker
):
    # given a payment captured at Stripe
    txn = make_payment(merchant_a, amount=5000)
    assert txn.gateway == "stripe"
    spans.clear()

    # when the merchant refunds it and a worker runs the refund
    response = merchant_a.client.post(f"/payment/transactions/{txn.public_id}/refund",
                                      {"amount": 1200, "reason": "Customer service request"}, format="json")
    assert response.status_code == 201, response.content
    refund_id = response.json()["id"]
    _wait_for(lambda: Refund.objects.get(public_id=refund_id).status == "succeeded")
    _wait_for(lambda: any(s.name == "gateway refund" for s in spans.get_finished_spans()))
    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}

    # then the request, the publish, the task, the gateway call and its HTTP request are one trace
    [server] = [s for s in finished if s.kind == SpanKind.SERVER and "refund" in s.name]
    [publish] = [s for s in finished if s.kind == SpanKind.PRODUCER and "refunds.execute" in s.name]
    [task] = [s for s in finished if s.kind == SpanKind.CONSUMER and "refunds.execute" in s.name]
    [gateway] = [s for s in finished if s.name == "gateway refund"]
    http_calls = [s for s in finished if s.kind == SpanKind.CLIENT
                  and str(s.attributes.get("http.url", s.attributes.get("url.full", ""))).startswith(localstripe_url)
                  and _ancestors(s, by_id) and gateway in _ancestors(s, by_id)]
    assert http_calls, "no HTTP span of the gateway call"
    trace_ids = {s.context.trace_id for s in [server, publish, task, gateway, *http_calls]}
    assert trace_ids == {server.context.trace_id}
    # ... linked parent to child: request → publish → task → gateway call → HTTP
    assert server in _ancestors(publish, by_id)
    assert publish in _ancestors(task, by_id)
    assert task in _ancestors(gateway, by_id)
    # ... with the database work of both processes in the same trace
    sql = [s for s in finished if s.kind == SpanKind.CLIENT and s.attributes.get("db.system") == "postgresql"]
    assert any(server in _ancestors(s, by_id) for s in sql) and any(task in _ancestors(s, by_id) for s in sql)

    # and the spans carry FlowPay's ids
    assert server.attributes["flowpay.transaction_id"] == txn.public_id
    assert server.attributes["flowpay.merchant_id"] == merchant_a.merchant.public_id
    assert gateway.attributes["flowpay.refund_id"] == refund_id
    assert (gateway.attributes["flowpay.gateway"], gateway.attributes["flowpay.gateway_operation"]) == ("stripe", "refund")


@pytest.mark.django_db(transaction=True)
def test_no_span_attribute_holds_a_secret_a_token_a_card_number_or_an_email(
    spans, stripe_primary, merchant_a, staff_client
):
    # given requests that carry an email, a card number in a query string, and bearer tokens
    staff = staff_client("support")
    created = merchant_a.client.post("/payment/customers", {"email": CUSTOMER_EMAIL, "name": "Jane"}, format="json")
    assert created.status_code == 201
    assert merchant_a.client.get(f"/payment/customers?email={CUSTOMER_EMAIL}").status_code == 200
    assert merchant_a.client.get(f"/payment/transactions?customer={PAN}").status_code == 400
    paid = merchant_a.client.post("/payment/transactions", {"amount": 1999, "currency": "usd",
                                                            "paymentMethod": "pm_card_visa",
                                                            "customer": created.json()["id"]}, format="json")
    assert paid.status_code == 201, paid.content
    assert staff.get(f"/payment/transactions/{paid.json()['id']}").status_code == 200
    finished = spans.get_finished_spans()
    assert len(finished) > 20  # requests, SQL, Redis and the Stripe HTTP calls were traced

    # then no attribute of any span (or span event) holds one of them
    secrets = {merchant_a.api_key, gateway_credentials("stripe").api_key, gateway_credentials("stripe").webhook_secret}
    for span in finished:
        for text in _all_strings(span):
            assert not EMAIL.search(text), (span.name, text)
            assert not contains_card_number(text), (span.name, text)
            assert not any(secret in text for secret in secrets if secret), span.name
            assert not re.search(r"\b(?:sk|rk)_(?:live|test)_|\bwhsec_|\bfp_(?:test|live|staff)_|bearer\s", text, re.I), text
        for key in span.attributes:
            assert not any(word in key.lower() for word in SECRET_WORDS), (span.name, key)


def test_the_sanitizer_cuts_query_strings_and_masks_what_the_instrumentations_may_record():
    clean = sanitize_attributes({
        "http.url": f"http://h/payment/customers?email={CUSTOMER_EMAIL}",
        "url.query": f"email={CUSTOMER_EMAIL}",
        "http.request.header.authorization": ("Bearer fp_test_abc",),
        "exception.message": f"card {PAN} of {CUSTOMER_EMAIL} refused with sk_test_123abc",
        "flowpay.refund_id": "re_123",
    })
    assert clean == {
        "http.url": "http://h/payment/customers",
        "exception.message": "card [card number removed] of [email] refused with [redacted]",
        "flowpay.refund_id": "re_123",
    }


@pytest.mark.django_db(transaction=True)
def test_the_trace_id_is_in_the_json_log_line_beside_the_correlation_id(spans, merchant_a, json_log_lines):
    # given a gateway whose answer is lost (the gateway timeout line is logged mid-request)
    buffer = json_log_lines("gateways.router")
    simulator_faults_set(SimulatorFaults(timeout_after_charge=True))
    try:
        response = merchant_a.client.post("/payment/transactions", {"amount": 1999, "currency": "usd",
                                                                    "paymentMethod": "pm_card_visa"}, format="json")
    finally:
        simulator_faults_clear()
    assert response.status_code == 201

    # then the log line carries the request's trace id next to its correlation id
    [line] = [json.loads(text) for text in buffer.getvalue().splitlines() if "gateway timeout" in text]
    [server] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert line["trace_id"] == f"{server.context.trace_id:032x}"
    assert line["correlation_id"] == response["X-Request-ID"]


def test_tracing_off_imports_nothing_of_opentelemetry():
    # given no OTLP endpoint, when a process serves requests and logs
    code = (
        "import django, logging, sys; django.setup();"
        "TRACING_MODULES = ('opentelemetry.sdk.trace', 'opentelemetry.exporter', 'opentelemetry.instrumentation');"
        "from django.test import Client; c = Client();"
        "c.get('/healthz'); c.get('/payment/transactions'); logging.getLogger('x').warning('hello');"
        "from core.observability.tracing import tracing_start;"
        "print(tracing_start(process='web'), sorted(m for m in sys.modules if m.startswith(TRACING_MODULES)))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "flowpay.settings", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=120)
    # then no tracer was started and nothing of tracing was loaded: no tracer SDK, exporter or
    # instrumentation (redis-py 8 imports OpenTelemetry's metrics SDK by itself whenever the SDK is
    # installed, for its own opt-in metrics: that import records nothing and is not FlowPay's)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "None []"
