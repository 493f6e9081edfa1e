"""OpenTelemetry tracing: one trace follows a payment from the merchant's HTTP request through
the database, the Celery publish and task, to the gateway's HTTP call.

Rules that must hold:
- Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Off, nothing from `opentelemetry` is
  imported and nothing is instrumented; the helpers below (`traced`, `span_annotate`,
  `current_trace_id`) cost one test of a module flag.
- Started once per process, after any fork: a batch exporter's thread does not survive a
  fork. gunicorn starts it in `post_fork` (docker/gunicorn.conf.py), Celery in
  `worker_process_init` (core/observability/celery_signals.py).
- Span attributes carry FlowPay's public ids (`flowpay.transaction_id`, `flowpay.refund_id`,
  `flowpay.merchant_id`, …), never a secret, token, card number or email address. The
  instrumentations record URLs, SQL text and error messages, so every span passes through
  `SanitizingSpanExporter` before it leaves the process: query strings are cut from URLs,
  attributes whose name says secret/token/password/authorization/cookie/email/card are
  dropped, and card numbers, email addresses, bearer tokens and API keys in any value are
  masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings

from core.carddata import mask_card_numbers

if TYPE_CHECKING:  # only for annotations: importing the SDK is the cost tracing-off avoids
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

_active = False
_provider: TracerProvider | None = None
_tracer = None
_instrumentors: list[Any] = []

# Public-id prefixes (core.models.new_public_id) and the attribute naming each kind of object.
ID_ATTRIBUTES = {
    "txn": "flowpay.transaction_id",
    "re": "flowpay.refund_id",
    "cb": "flowpay.chargeback_id",
    "mer": "flowpay.merchant_id",
    "cus": "flowpay.customer_id",
    "pm": "flowpay.payment_method_id",
    "sub": "flowpay.subscription_id",
    "inv": "flowpay.invoice_id",
    "rbj": "flowpay.rebill_job_id",
    "evt": "flowpay.event_id",
    "whd": "flowpay.webhook_delivery_id",
}


def tracing_enabled() -> bool:
    return _active


def tracing_start(*, process: str, exporter: SpanExporter | None = None, set_global: bool = True) -> TracerProvider | None:
    """Start tracing in this process (idempotent): a tracer provider exporting to the OTLP
    endpoint (or to `exporter`, for tests), and the Django, Celery, psycopg, requests,
    urllib3 and redis instrumentations. Returns None, doing nothing, when no endpoint is
    configured and no exporter given. `process` (web, worker, beat) is a resource attribute."""
    global _active, _provider, _tracer
    if _provider is not None:
        return _provider
    if exporter is None and not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": settings.OTEL_SERVICE_NAME, "flowpay.process": process})
    provider = TracerProvider(resource=resource)
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and _HEADERS, _TIMEOUT) itself.
        provider.add_span_processor(BatchSpanProcessor(SanitizingSpanExporter(OTLPSpanExporter())))
    else:
        provider.add_span_processor(SimpleSpanProcessor(SanitizingSpanExporter(exporter)))
    if set_global:
        trace.set_tracer_provider(provider)
    _instrument(provider)
    _provider, _tracer, _active = provider, provider.get_tracer("flowpay"), True
    return provider


def tracing_stop() -> None:
    """Undo the instrumentations and flush the spans (tests; process exit)."""
    global _active, _provider, _tracer
    if _provider is None:
        return
    for instrumentor in reversed(_instrumentors):
        instrumentor.uninstrument()
    _instrumentors.clear()
    _provider.shutdown()
    _provider, _tracer, _active = None, None, False


def _instrument(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    options = [
        # /healthz, /readyz and /metrics are polled every few seconds: no traces of them.
        (DjangoInstrumentor(), {"excluded_urls": "healthz,readyz,metrics"}),
        # SQL parameters are never captured (they may hold customers' emails).
        (PsycopgInstrumentor(), {"enable_commenter": False, "capture_parameters": False}),
        (CeleryInstrumentor(), {}),
        (RequestsInstrumentor(), {}),
        (URLLib3Instrumentor(), {}),
        (RedisInstrumentor(), {}),  # commands are recorded without their arguments
    ]
    for instrumentor, kwargs in options:
        instrumentor.instrument(tracer_provider=provider, **kwargs)
        _instrumentors.append(instrumentor)


def id_attributes(*public_ids: str | None) -> dict[str, str]:
    """`{"flowpay.transaction_id": "txn_…", …}` for FlowPay public ids (others are ignored)."""
    attributes = {}
    for public_id in public_ids:
        if public_id and "_" in public_id:
            name = ID_ATTRIBUTES.get(public_id.split("_", 1)[0])
            if name:
                attributes[name] = public_id
    return attributes


@contextmanager
def traced(name: str, *, public_ids: Sequence[str | None] = (), **attributes: str) -> Iterator[None]:
    """A child span of the current one around a block, carrying the FlowPay ids given."""
    if not _active:
        yield
        return
    with _tracer.start_as_current_span(name, attributes={**id_attributes(*public_ids), **attributes}):
        yield


def span_annotate(*public_ids: str | None) -> None:
    """Put FlowPay ids on the current span (the request's, the task's)."""
    if not _active:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(id_attributes(*public_ids))


def current_trace_id() -> str | None:
    """The current trace id (32 hex digits), for log lines; None when tracing is off."""
    if not _active:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


# --- what leaves the process -------------------------------------------------------------

_SECRET_KEY_WORDS = {"authorization", "password", "passwd", "secret", "token", "cookie", "email", "card", "pan",
                     "cvc", "cvv", "apikey", "credential"}
_URL_KEYS = {"http.url", "url.full", "http.target", "url.original"}
_DROPPED_KEYS = {"url.query"}
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# API keys and tokens by their shape: Stripe (sk_/rk_/pk_, whsec_), FlowPay (fp_…), bearer values.
_TOKEN = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9]+|\bfp_[a-z]+_[A-Za-z0-9]+"
                    r"|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=\-]+")


def _key_is_secret(key: str) -> bool:
    words = set(re.split(r"[._\-\s]+", key.lower()))
    return bool(words & _SECRET_KEY_WORDS) or "api_key" in key.lower()


def _clean_text(text: str) -> str:
    return _TOKEN.sub("[redacted]", _EMAIL.sub("[email]", mask_card_numbers(text)))


def sanitize_attributes(attributes) -> dict:
    """The attributes safe to export (the module's rules)."""
    clean = {}
    for key, value in (attributes or {}).items():
        if key in _DROPPED_KEYS or _key_is_secret(key):
            continue
        if key in _URL_KEYS and isinstance(value, str):
            value = value.split("?", 1)[0]
        if isinstance(value, str):
            value = _clean_text(value)
        elif isinstance(value, (list, tuple)):
            value = tuple(_clean_text(item) if isinstance(item, str) else item for item in value)
        clean[key] = value
    return clean


def _sanitized(span: ReadableSpan) -> ReadableSpan:
    from opentelemetry.sdk.trace import Event, ReadableSpan

    events = [Event(event.name, sanitize_attributes(event.attributes), event.timestamp) for event in span.events]
    status = span.status
    if status.description:
        from opentelemetry.trace import Status

        status = Status(status.status_code, _clean_text(status.description))
    return ReadableSpan(
        name=_clean_text(span.name), context=span.context, parent=span.parent, resource=span.resource,
        attributes=sanitize_attributes(span.attributes), events=events, links=span.links, kind=span.kind,
        status=status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class SanitizingSpanExporter:
    """Wraps the real exporter: every span is cleaned (the module's rules) before export."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]):
        return self.inner.export([_sanitized(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
