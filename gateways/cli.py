"""The gateway probes shared by the gateway runbook commands (gateway_health_check,
gateway_latency_check, monitor_gateway_health). The generic command machinery (tables,
`--format json`, exit statuses) is core.cli's; what knows gateways lives here, since core
imports no other app."""

from __future__ import annotations

import time

from django.core.management.base import CommandError

from core.cli import RunbookCommand
from gateways.breaker import breaker_for
from gateways.registry import GATEWAY_CLASSES, enabled_gateway_names, gateway_named
from gateways.router import primary_gateway_name
from gateways.stats import gateway_recent_stats


def gateway_names_for(option: str | None) -> list[str]:
    """The gateway named by --gateway (any known gateway, enabled or not), else every
    enabled gateway in priority order. An unknown name is a usage error."""
    if not option:
        return enabled_gateway_names()
    if option not in GATEWAY_CLASSES:
        raise CommandError(
            f"unknown gateway {option!r}; known: {', '.join(GATEWAY_CLASSES)}; enabled: {', '.join(enabled_gateway_names())}",
            returncode=RunbookCommand.USAGE_EXIT_CODE,
        )
    return [option]


def gateway_probe(name: str) -> dict:
    """One timed health_check() of a gateway with its circuit breaker and recent (5 min)
    call statistics. The probe calls the gateway directly, not through the router's
    observed_call: a diagnostic must not close an open circuit (observed_call counts any
    answer, even "unhealthy", as a success) nor skew the recent error rate it reports."""
    started = time.perf_counter()
    try:
        health = gateway_named(name).health_check()
        healthy, reported, detail = health.healthy, health.latency_ms, health.detail
    except Exception as exc:  # a probe reports failures, it never raises
        healthy, reported, detail = False, None, f"{type(exc).__name__}: {str(exc)[:200]}"
    measured = (time.perf_counter() - started) * 1000
    breaker = breaker_for(name).status()
    recent = gateway_recent_stats(name).total
    average = recent.average_latency_ms
    return {
        "gateway": name,
        "enabled": name in enabled_gateway_names(),
        "primary": name == primary_gateway_name(),
        "healthy": healthy,
        "latencyMs": round(reported if reported is not None else measured, 1),
        "circuit": str(breaker.state),
        "failuresInWindow": breaker.failures_in_window,
        "recentCalls": recent.calls,
        "recentErrorRatePercent": round(recent.error_rate * 100, 1),
        "recentAverageLatencyMs": round(average, 1) if average is not None else None,
        "detail": detail,
    }
