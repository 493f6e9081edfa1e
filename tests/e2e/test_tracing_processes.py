"""Tracing in the deployed processes: gunicorn starts it in each worker after the fork
(docker/gunicorn.conf.py post_fork) and a prefork Celery worker in each pool process
(worker_process_init); both export over OTLP/HTTP to the configured endpoint, here a
collector stand-in on 127.0.0.1 that decodes what it receives."""

import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.processes import free_port, sibling_env, start_gunicorn, stop_process

SERVER, CONSUMER = 2, 5  # opentelemetry.proto Span.SpanKind


class _Collector(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
                    self.received.append((resource, span.name, span.kind, attributes))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Collector.received
    server.shutdown()


def _tracing_env(endpoint: str, **extra: str) -> dict:
    return sibling_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BSP_SCHEDULE_DELAY="100", **extra)


def _wait_for(predicate, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_trace_requests_after_the_fork(collector, merchant_a):
    # given gunicorn with two workers and an OTLP endpoint
    endpoint, received = collector
    port = free_port()
    web = start_gunicorn(port, workers=2, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BSP_SCHEDULE_DELAY="100")
    try:
        # when a merchant lists its transactions (several times: both workers serve some)
        for _ in range(6):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/payment/transactions",
                                             headers={"Authorization": f"Bearer {merchant_a.api_key}"})
            assert urllib.request.urlopen(request, timeout=10).status == 200

        # then the request spans, with their SQL, reach the collector from the web processes
        def request_spans():
            return [r for r in received if r[2] == SERVER and r[3].get("flowpay.merchant_id") == merchant_a.merchant.public_id]

        _wait_for(lambda: len(request_spans()) == 6, 30)
        assert {r[0]["service.name"] for r in request_spans()} == {"payment-service"}
        assert {r[0]["flowpay.process"] for r in request_spans()} == {"web"}
        assert any(r[3].get("db.system") == "postgresql" for r in received)
        assert not any(r[3].get("http.route") == "healthz" or "healthz" in r[1] for r in received)  # probes untraced
    finally:
        stop_process(web)


@pytest.mark.django_db(transaction=True)
def test_a_prefork_celery_worker_traces_tasks_in_its_pool_process(collector):
    # given a prefork worker (one pool process) on a private queue, with an OTLP endpoint
    endpoint, received = collector
    queue = f"test-tracing-{os.getpid()}-{time.monotonic_ns()}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "flowpay", "worker", "--pool=prefork", "--concurrency=1", "-Q", queue,
         "--loglevel=WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=Path(settings.BASE_DIR), env=_tracing_env(endpoint), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        from audit.tasks import audit_seal_task

        # when it runs a task
        audit_seal_task.apply_async(queue=queue)

        # then the task's span reaches the collector from the pool process
        _wait_for(lambda: any(r[2] == CONSUMER and "audit.seal" in r[1] for r in received), 60)
        [task] = [r for r in received if r[2] == CONSUMER and "audit.seal" in r[1]]
        assert task[0]["flowpay.process"] == "worker"
    finally:
        stop_process(worker)
