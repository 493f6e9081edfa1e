"""Health endpoints, Prometheus metrics, JSON logs with correlation ids, OpenAPI."""

import json

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["checks"]["database"]["status"] == "ok" and body["checks"]["database"]["vendor"] == "postgresql"
    assert body["checks"]["cache"]["status"] == "ok" and body["checks"]["cache"]["backend"] == "redis"


def test_payment_health_details(client):
    response = client.get("/payment/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: c["status"] for name, c in body["components"].items()} == {"database": "ok", "redis": "ok", "broker": "ok"}
    assert body["gateways"][0]["name"] == "simulator" and body["gateways"][0]["status"] == "ok"
    assert body["primaryGateway"] == "simulator"
    assert body["fallbackMode"] is False and body["simplifiedFlow"] is False


def test_payment_health_is_503_when_the_database_is_unreachable(client, monkeypatch):
    from backoffice import health

    def broken():
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(health, "check_database", broken)
    response = client.get("/payment/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert client.get("/readyz").status_code == 503


def test_payment_health_is_503_when_no_gateway_is_healthy(client, settings, monkeypatch):
    from gateways.base import HealthStatus
    from gateways.simulator.adapter import SimulatorGateway

    monkeypatch.setattr(SimulatorGateway, "health_check", lambda self: HealthStatus(healthy=False, detail="down"))
    response = client.get("/payment/health")
    assert response.status_code == 503
    assert response.json()["gateways"][0]["status"] == "error"


def _metric(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_expose_payment_latency_status_counts_and_inflight(client, merchant_a, make_payment):
    before = client.get("/metrics").content.decode()
    make_payment(merchant_a)
    make_payment(merchant_a, payment_method="pm_card_chargeDeclinedInsufficientFunds")
    make_payment(merchant_a, payment_method="pm_card_threeDSecure2Required")

    response = client.get("/metrics")
    text = response.content.decode()

    assert response.status_code == 200
    assert _metric(text, "payments_processed_total", gateway="simulator", status="completed") - _metric(before, "payments_processed_total", gateway="simulator", status="completed") == 1
    assert _metric(text, "payments_processed_total", gateway="simulator", status="failed") - _metric(before, "payments_processed_total", gateway="simulator", status="failed") == 1
    assert _metric(text, "payment_processing_latency_count", gateway="simulator", outcome="completed") >= 1
    assert "payment_processing_latency_bucket" in text
    assert _metric(text, "payments_inflight_total") == 1  # the requires_action payment


def test_runbook_processing_and_success_rates_come_from_the_database(client, merchant_a, make_payment):
    text = client.get("/metrics").content.decode()
    assert _metric(text, "payment_processing_rate") == 0 and "payment_success_rate" not in text
    for _ in range(3):
        make_payment(merchant_a)
    make_payment(merchant_a, payment_method="pm_card_chargeDeclinedInsufficientFunds")
    make_payment(merchant_a, payment_method="pm_card_threeDSecure2Required")  # not final: not counted

    text = client.get("/metrics").content.decode()
    assert _metric(text, "payment_processing_rate") == pytest.approx(4 / 5)  # per minute over 5 minutes
    assert _metric(text, "payment_success_rate") == pytest.approx(3 / 4)


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123").headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    unsafe = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline").headers["X-Request-ID"]
    assert unsafe != "bad id\nwith newline"


def test_json_logs_carry_the_correlation_id_and_no_query_string(merchant_a, json_log_lines):
    buffer = json_log_lines()
    merchant_a.client.get("/payment/transactions", {"limit": "abc", "secret": "query-value"}, HTTP_X_REQUEST_ID="corr-77")

    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    bad_request = [line for line in lines if line.get("logger") == "django.request"]
    assert bad_request and bad_request[-1]["correlation_id"] == "corr-77"
    assert bad_request[-1]["level"] == "WARNING"
    assert bad_request[-1]["request"] == "GET /payment/transactions"
    assert "query-value" not in buffer.getvalue()


def test_openapi_schema_and_offline_docs(client):
    schema = client.get("/payment/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    spec = json.loads(schema.content)
    assert spec["openapi"].startswith("3.")
    assert "/payment/transactions" in spec["paths"] and "/payment/transactions/{transaction_id}/capture" in spec["paths"]
    create = spec["components"]["schemas"]["TransactionCreateInputRequest"]["properties"]
    assert {"amount", "currency", "paymentMethod", "captureMethod", "metadata"} <= set(create)
    docs = client.get("/payment/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "cdn.jsdelivr.net" not in html and "unpkg.com" not in html


def test_the_suite_runs_on_postgresql():
    assert connection.vendor == "postgresql"


def test_the_openapi_schema_is_valid_and_complete(tmp_path):
    from django.core.management import call_command

    # --fail-on-warn: every view has documented input and output, no operation id collides
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/payment/events/{event_id}" in (tmp_path / "schema.yaml").read_text()


def test_the_production_image_copies_every_local_app():
    from pathlib import Path

    from django.apps import apps
    from django.conf import settings

    dockerfile = (Path(settings.BASE_DIR) / "docker" / "Dockerfile").read_text()
    local = {config.name for config in apps.get_app_configs() if Path(config.path).parent == Path(settings.BASE_DIR)}
    assert local and all(f"COPY {name} ./{name}" in dockerfile for name in local), local
