"""Health endpoints: /healthz (alive), /readyz (dependencies reachable), open to every probe,
and the runbook's detailed /payment/health (503 when payments cannot be served), served to
monitoring only (core.observability.access)."""

import time
from pathlib import Path

from celery import current_app as celery_app  # the project's app (flowpay/celery.py)
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.observability.access import monitoring_only
from gateways.breaker import BreakerState, breaker_for
from gateways.registry import enabled_gateway_names, gateway_named
from gateways.router import fallback_mode_enabled, primary_gateway_name, simplified_flow_enabled
from gateways.stats import gateway_recent_stats


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
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"transport": conn.transport_cls if isinstance(conn.transport_cls, str) else "amqp"}


def _gateway_status(name: str) -> dict:
    """A gateway's probe, its circuit breaker and its recent (5 min) error rate and latency."""

    def check():
        health = gateway_named(name).health_check()
        if not health.healthy:
            raise RuntimeError(health.detail or "unhealthy")
        return {}

    status = {"name": name, **_timed(check)}
    try:
        breaker = breaker_for(name).status()
        recent = gateway_recent_stats(name).total
        status.update(
            circuit=str(breaker.state),
            failuresInWindow=breaker.failures_in_window,
            recentCalls=recent.calls,
            recentErrorRate=round(recent.error_rate, 4),
            recentAverageLatencyMs=round(recent.average_latency_ms, 1) if recent.average_latency_ms is not None else None,
        )
    except Exception as exc:  # the cache is away: say so, keep reporting
        status.update(circuit="unknown", circuitError=f"{type(exc).__name__}: {str(exc)[:200]}")
    return status


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
@monitoring_only
def payment_health(request):
    database = _timed(check_database)
    components = {"database": database, "redis": _timed(check_cache), "broker": _timed(check_broker)}
    gateways = [_gateway_status(name) for name in enabled_gateway_names()] if database["status"] == "ok" else []
    usable = [g for g in gateways if g["status"] == "ok" and g.get("circuit") != BreakerState.OPEN]
    serviceable = database["status"] == "ok" and bool(usable)
    degraded = any(c["status"] != "ok" for c in components.values()) or len(usable) < len(gateways)
    primary = primary_gateway_name() if database["status"] == "ok" else None
    body = {
        "status": "unavailable" if not serviceable else ("degraded" if degraded else "ok"),
        "service": "payment-service",
        "components": components,
        "gateways": gateways,
        "primaryGateway": primary,
        "fallbackGateways": [name for name in enabled_gateway_names() if name != primary],
        "fallbackMode": fallback_mode_enabled() if database["status"] == "ok" else None,
        "simplifiedFlow": simplified_flow_enabled() if database["status"] == "ok" else None,
    }
    return JsonResponse(body, status=200 if serviceable else 503)
