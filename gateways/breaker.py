"""Circuit breaker per gateway, with its state in the shared cache (Redis in production),
so every web and worker process, on every host, sees one breaker per gateway.

    closed ──(N failures within the window)──▶ open ──(cooldown elapsed)──▶ half-open
      ▲                                                                      │
      └──────────────(probe succeeds)────────── half-open ◀──(probe fails)───┘ → open

Only failures that say the gateway is unwell count (unavailable, timeouts); declines and
invalid requests do not. In half-open state one probe at a time is let through. The cache
operations used (add, incr, set) are atomic on Redis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache

from core.cache import cache_key


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerStatus:
    gateway: str
    state: BreakerState
    failures_in_window: int
    opened_at: float | None
    retry_at: float | None


def _config() -> dict:
    return {
        "threshold": settings.FLOWPAY_BREAKER_FAILURE_THRESHOLD,
        "window": settings.FLOWPAY_BREAKER_WINDOW_SECONDS,
        "cooldown": settings.FLOWPAY_BREAKER_COOLDOWN_SECONDS,
        "probe_timeout": settings.FLOWPAY_BREAKER_PROBE_SECONDS,
    }


class CircuitBreaker:
    def __init__(self, gateway: str):
        self.gateway = gateway
        self._prefix = f"flowpay:breaker:{gateway}"

    # --- keys ---------------------------------------------------------------------
    def _failures_key(self, now: float, window: int) -> str:
        return f"{self._prefix}:failures:{int(now // window)}"

    @property
    def _opened_key(self) -> str:
        return f"{self._prefix}:opened_at"

    @property
    def _probe_key(self) -> str:
        return f"{self._prefix}:probe"

    # --- queries ------------------------------------------------------------------
    def status(self) -> BreakerStatus:
        config, now = _config(), time.time()
        failures_key = self._failures_key(now, config["window"])
        found = cache.get_many([self._opened_key, failures_key])  # one round trip
        opened_at = found.get(self._opened_key)
        failures = found.get(failures_key) or 0
        if opened_at is None:
            return BreakerStatus(self.gateway, BreakerState.CLOSED, failures, None, None)
        retry_at = opened_at + config["cooldown"]
        state = BreakerState.OPEN if now < retry_at else BreakerState.HALF_OPEN
        return BreakerStatus(self.gateway, state, failures, opened_at, retry_at)

    def allow_request(self) -> bool:
        """May a call go to this gateway now? In half-open state only the caller that wins
        the probe token (one per probe_timeout) is let through."""
        status = self.status()
        if status.state == BreakerState.CLOSED:
            return True
        if status.state == BreakerState.OPEN:
            return False
        return cache.add(self._probe_key, "1", timeout=_config()["probe_timeout"])

    # --- outcomes -----------------------------------------------------------------
    def record_success(self, *, pipeline=None) -> None:
        """A successful probe (or a call that raced the opening): the gateway is back. The
        keys are deleted without being read first (deleting absent keys does nothing); in
        `pipeline` (core.cache.cache_pipeline) when given, which its caller executes."""
        if pipeline is None:
            cache.delete_many([self._opened_key, self._probe_key])
        else:
            pipeline.delete(cache_key(self._opened_key), cache_key(self._probe_key))

    def record_failure(self) -> BreakerState:
        config, now = _config(), time.time()
        key = self._failures_key(now, config["window"])
        cache.add(key, 0, timeout=config["window"] * 2)
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=config["window"] * 2)
            failures = 1
        status = self.status()
        if status.state == BreakerState.HALF_OPEN:
            # The probe failed: open again for a full cooldown.
            cache.set(self._opened_key, now, timeout=None)
            cache.delete(self._probe_key)
            return BreakerState.OPEN
        if status.state == BreakerState.CLOSED and failures >= config["threshold"]:
            cache.add(self._opened_key, now, timeout=None)
            return BreakerState.OPEN
        return status.state

    def reset(self) -> None:
        cache.delete_many([self._opened_key, self._probe_key, self._failures_key(time.time(), _config()["window"])])


def breaker_for(gateway: str) -> CircuitBreaker:
    return CircuitBreaker(gateway)
