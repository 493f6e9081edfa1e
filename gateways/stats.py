"""Recent call statistics per gateway (calls, errors, latency), kept in the shared cache
in one-minute buckets, for /payment/health, gateway_error_rate and the runbook commands."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.core.cache import cache

from core.cache import cache_key, cache_pipeline

BUCKET_SECONDS = 60
WINDOW_BUCKETS = 5  # "recent" = the last five minutes
BUCKET_TTL_SECONDS = BUCKET_SECONDS * (WINDOW_BUCKETS + 1)
OPERATIONS = ("authorize", "capture", "void", "refund", "fetch", "health")


@dataclass
class OperationStats:
    calls: int = 0
    errors: int = 0
    latency_ms_total: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def average_latency_ms(self) -> float | None:
        return self.latency_ms_total / self.calls if self.calls else None


@dataclass
class GatewayStats:
    gateway: str
    by_operation: dict[str, OperationStats] = field(default_factory=dict)

    @property
    def total(self) -> OperationStats:
        total = OperationStats()
        for stats in self.by_operation.values():
            total.calls += stats.calls
            total.errors += stats.errors
            total.latency_ms_total += stats.latency_ms_total
        return total


def _key(gateway: str, operation: str, bucket: int, metric: str) -> str:
    return f"flowpay:gwstats:{gateway}:{operation}:{bucket}:{metric}"


def _incr(key: str, amount: int) -> None:
    cache.add(key, 0, timeout=BUCKET_TTL_SECONDS)
    try:
        cache.incr(key, amount)
    except ValueError:
        cache.set(key, amount, timeout=BUCKET_TTL_SECONDS)


def gateway_stats_record(*, gateway: str, operation: str, error: bool, latency_ms: int, pipeline=None) -> None:
    """Count one call in the current bucket. On Redis the counts go in one round trip: in
    `pipeline` (core.cache.cache_pipeline) when given, which its caller then executes with
    its own commands, else in one of their own."""
    bucket = int(time.time() // BUCKET_SECONDS)
    counts = [("calls", 1), ("latency", max(latency_ms, 0))] + ([("errors", 1)] if error else [])
    pipe = pipeline if pipeline is not None else cache_pipeline()
    if pipe is None:  # not Redis (make run's file cache)
        for metric, amount in counts:
            _incr(_key(gateway, operation, bucket, metric), amount)
        return
    for metric, amount in counts:
        key = cache_key(_key(gateway, operation, bucket, metric))
        pipe.incrby(key, amount)
        pipe.expire(key, BUCKET_TTL_SECONDS, nx=True)  # set once, by the bucket's first count (Redis 7)
    if pipeline is None:
        pipe.execute()


def gateway_recent_stats(gateway: str) -> GatewayStats:
    now_bucket = int(time.time() // BUCKET_SECONDS)
    buckets = range(now_bucket - WINDOW_BUCKETS + 1, now_bucket + 1)
    keys = [_key(gateway, op, b, m) for op in OPERATIONS for b in buckets for m in ("calls", "errors", "latency")]
    values = cache.get_many(keys)
    result = GatewayStats(gateway=gateway)
    for operation in OPERATIONS:
        stats = OperationStats()
        for bucket in buckets:
            stats.calls += int(values.get(_key(gateway, operation, bucket, "calls"), 0))
            stats.errors += int(values.get(_key(gateway, operation, bucket, "errors"), 0))
            stats.latency_ms_total += int(values.get(_key(gateway, operation, bucket, "latency"), 0))
        if stats.calls:
            result.by_operation[operation] = stats
    return result
