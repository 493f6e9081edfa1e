"""Velocity counters in Redis: payments and declines per card fingerprint, customer, email
address and client IP, over the last hour, 24 hours and 7 days, per merchant and mode.

Rules:
- One sorted set per (merchant, mode, subject, value, payments|declines); its members are
  payments, scored by the time they were screened. A payment is added with ZADD NX under its
  count key — derived from the merchant's Idempotency-Key when there is one, else the
  transaction's id — so a request retried under the same key (twenty at once included) is
  counted once, and keeps the time it was first counted.
- Counting is one pipelined round trip: add, trim what is older than 7 days, count each
  window. Counts include the payment being screened (Radar's meaning: the 6th payment of the
  hour sees 6).
- Values are hashed in the keys: no email or address is written to Redis.
- Redis out of reach (refused, timed out, no URL) raises VelocityUnavailable; screening then
  applies FLOWPAY_FRAUD_FAILURE_POLICY. After a failure a process leaves Redis alone for
  FLOWPAY_FRAUD_REDIS_RETRY_SECONDS, so an outage costs one timeout, not one per payment.
"""

from __future__ import annotations

import hashlib
import threading
import time

import redis
from django.conf import settings

from fraud.screening.language.attributes import VELOCITY_SUBJECTS, VELOCITY_WINDOWS

WINDOW_SECONDS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}
RETENTION_SECONDS = WINDOW_SECONDS["weekly"]
assert set(WINDOW_SECONDS) == set(VELOCITY_WINDOWS)

CHARGES, DECLINES = "charges", "declines"
ATTRIBUTE_PREFIX = {CHARGES: "total_charges", DECLINES: "declined_charges"}


class VelocityUnavailable(Exception):
    """The counters could not be read or written; the message says why (for the decision)."""


_clients: dict[tuple[str, float], redis.Redis] = {}
_unavailable_until: dict[str, float] = {}
_lock = threading.Lock()


def _client() -> redis.Redis:
    url = settings.FLOWPAY_FRAUD_REDIS_URL
    if not url:
        raise VelocityUnavailable("no Redis is configured for the velocity counters")
    if time.monotonic() < _unavailable_until.get(url, 0.0):
        raise VelocityUnavailable("Redis failed moments ago; not asked again yet")
    timeout = settings.FLOWPAY_FRAUD_REDIS_TIMEOUT_SECONDS
    key = (url, timeout)
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key) or redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30,
            )
            _clients[key] = client
    return client


def _failed(exc: Exception) -> VelocityUnavailable:
    url = settings.FLOWPAY_FRAUD_REDIS_URL
    _unavailable_until[url] = time.monotonic() + settings.FLOWPAY_FRAUD_REDIS_RETRY_SECONDS
    return VelocityUnavailable(f"Redis is unreachable: {type(exc).__name__}")


def subject_key(*, merchant_id: int, livemode: bool, subject: str, value: str, kind: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
    mode = "live" if livemode else "test"
    return f"{settings.FLOWPAY_FRAUD_KEY_PREFIX}:v1:{merchant_id}:{mode}:{subject}:{digest}:{kind}"


def _present(subjects: dict[str, str | None]) -> list[tuple[str, str]]:
    return [(subject, value) for subject, value in subjects.items() if subject in VELOCITY_SUBJECTS and value]


def velocity_count(
    *, merchant_id: int, livemode: bool, subjects: dict[str, str | None], member: str, now: float | None = None,
) -> dict[str, int]:
    """Count this payment (`member`) for each subject it has, and return every velocity
    attribute: `total_charges_per_<subject>_<window>` and `declined_charges_per_…`. A
    subject the payment lacks (no email) has no counts: its attributes are missing."""
    now = time.time() if now is None else now
    present = _present(subjects)
    if not present:
        return {}
    client = _client()
    pipe = client.pipeline(transaction=False)
    for subject, value in present:
        for kind in (CHARGES, DECLINES):
            key = subject_key(merchant_id=merchant_id, livemode=livemode, subject=subject, value=value, kind=kind)
            if kind == CHARGES:
                pipe.zadd(key, {member: now}, nx=True)
                pipe.expire(key, RETENTION_SECONDS + 3600)
            pipe.zremrangebyscore(key, "-inf", f"({now - RETENTION_SECONDS}")
            for seconds in WINDOW_SECONDS.values():
                pipe.zcount(key, now - seconds, "+inf")
    try:
        replies = pipe.execute()
    except redis.RedisError as exc:
        raise _failed(exc) from exc
    counts: dict[str, int] = {}
    position = 0
    for subject, _ in present:
        for kind in (CHARGES, DECLINES):
            position += 3 if kind == CHARGES else 1  # zadd, expire, zremrangebyscore | zremrangebyscore
            for window in WINDOW_SECONDS:
                counts[f"{ATTRIBUTE_PREFIX[kind]}_per_{subject}_{window}"] = int(replies[position])
                position += 1
    return counts


def velocity_record_decline(
    *, merchant_id: int, livemode: bool, subjects: dict[str, str | None], member: str, now: float | None = None,
) -> None:
    """Count a payment the gateway declined (once per member, as for payments). Best effort:
    a decline that cannot be counted is not worth failing a payment over."""
    now = time.time() if now is None else now
    present = _present(subjects)
    if not present:
        return
    try:
        client = _client()
        pipe = client.pipeline(transaction=False)
        for subject, value in present:
            key = subject_key(merchant_id=merchant_id, livemode=livemode, subject=subject, value=value, kind=DECLINES)
            pipe.zadd(key, {member: now}, nx=True)
            pipe.expire(key, RETENTION_SECONDS + 3600)
        pipe.execute()
    except VelocityUnavailable:
        return
    except redis.RedisError as exc:
        _failed(exc)


def velocity_counts_read(
    *, merchant_id: int, livemode: bool, subject: str, value: str, now: float | None = None,
) -> dict[str, int]:
    """The counts of one subject without counting anything (for operators and tests)."""
    now = time.time() if now is None else now
    client = _client()
    pipe = client.pipeline(transaction=False)
    for kind in (CHARGES, DECLINES):
        key = subject_key(merchant_id=merchant_id, livemode=livemode, subject=subject, value=value, kind=kind)
        for seconds in WINDOW_SECONDS.values():
            pipe.zcount(key, now - seconds, "+inf")
    try:
        replies = iter(pipe.execute())
    except redis.RedisError as exc:
        raise _failed(exc) from exc
    return {f"{ATTRIBUTE_PREFIX[kind]}_per_{subject}_{window}": int(next(replies))
            for kind in (CHARGES, DECLINES) for window in WINDOW_SECONDS}
