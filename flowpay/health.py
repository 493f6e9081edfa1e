"""Health endpoints: /healthz (alive), /readyz (dependencies reachable) and the runbook's
detailed /payment/health (503 when payments cannot be served)."""

import time
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from payments.gateways.registry import enabled_gateway_names, gateway_named


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check() or {}
        return {"status": "ok", "latencyMs": round((time.perf_counter() - started) * 1000, 2), **detail}
    except Exception as exc:  # a health check reports failures, it never raises
        return {"status": "error", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def check_cache() -> dict:
    cache.set("flowpay:health", "1", timeout=10)
    if cache.get("flowpay:health") != "1":
        raise RuntimeError("cache did not return what was written")
    return {"backend": "redis" if settings.REDIS_URL else "file"}


def check_broker() -> dict:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        folder.mkdir(parents=True, exist_ok=True)
        return {"transport": "filesystem"}
    from flowpay.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"transport": conn.transport_cls if isinstance(conn.transport_cls, str) else "amqp"}


def _gateway_status(name: str) -> dict:
    def check():
        health = gateway_named(name).health_check()
        if not health.healthy:
            raise RuntimeError(health.detail or "unhealthy")
        return {}

    return {"name": name, **_timed(check)}


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    checks = {"database": _timed(check_database), "cache": _timed(check_cache)}
    ready = all(c["status"] == "ok" for c in checks.values())
    return JsonResponse({"status": "ready" if ready else "not_ready", "checks": checks}, status=200 if ready else 503)


@never_cache
@require_GET
def payment_health(request):
    database = _timed(check_database)
    components = {"database": database, "redis": _timed(check_cache), "broker": _timed(check_broker)}
    gateways = [_gateway_status(name) for name in enabled_gateway_names()] if database["status"] == "ok" else []
    names = enabled_gateway_names()
    serviceable = database["status"] == "ok" and any(g["status"] == "ok" for g in gateways)
    degraded = any(c["status"] != "ok" for c in components.values()) or any(g["status"] != "ok" for g in gateways)
    body = {
        "status": "unavailable" if not serviceable else ("degraded" if degraded else "ok"),
        "service": "payment-service",
        "components": components,
        "gateways": gateways,
        "primaryGateway": names[0] if names else None,
        "fallbackGateways": names[1:],
        "fallbackMode": False,
        "simplifiedFlow": False,
    }
    return JsonResponse(body, status=200 if serviceable else 503)
