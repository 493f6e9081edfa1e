"""What the gateways page shows: per gateway its circuit (Redis), recent calls (the shared
call statistics of the last five minutes), whether it is the primary, and its key's age and
rotation date; and the runbook's switches as every process sees them (core.runtime)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from backoffice.ops.services import ops_state
from gateways.breaker import breaker_for
from gateways.registry import enabled_gateway_names
from gateways.rotation import gateway_key_rotation
from gateways.stats import WINDOW_BUCKETS, gateway_recent_stats


@dataclass(frozen=True)
class GatewayRow:
    name: str
    primary: bool
    circuit: str  # closed | open | half_open
    failures_in_window: int
    retry_at: dt.datetime | None
    calls: int
    errors: int
    error_rate: float
    average_latency_ms: float | None
    key: str | None
    key_created_at: dt.date | None
    key_age_days: int | None
    rotation_due_on: dt.date | None
    rotation_status: str


@dataclass(frozen=True)
class GatewaysState:
    switches: dict
    gateways: list[GatewayRow]
    window_minutes: int
    rotation_days: int


def gateways_state(*, today: dt.date) -> GatewaysState:
    switches = ops_state()
    rotation = gateway_key_rotation(today=today)
    keys = {row["gateway"]: row for row in rotation.rows}
    rows = []
    for name in enabled_gateway_names():
        breaker = breaker_for(name).status()
        stats = gateway_recent_stats(name).total
        key = keys.get(name, {})
        rows.append(GatewayRow(
            name=name, primary=name == switches["primary_gateway"], circuit=str(breaker.state),
            failures_in_window=breaker.failures_in_window,
            retry_at=dt.datetime.fromtimestamp(breaker.retry_at, dt.UTC) if breaker.retry_at else None,
            calls=stats.calls, errors=stats.errors, error_rate=stats.error_rate, average_latency_ms=stats.average_latency_ms,
            key=key.get("key"), key_created_at=key.get("createdAt"), key_age_days=key.get("ageDays"),
            rotation_due_on=key.get("rotationDueOn"), rotation_status=key.get("status", "no key needed"),
        ))
    return GatewaysState(switches=switches, gateways=rows, window_minutes=WINDOW_BUCKETS, rotation_days=rotation.rotation_days)
