"""Runtime switches shared by every process: persisted in the database, read through a
per-process cache of FLOWPAY_RUNTIME_REFRESH_SECONDS (2 s), so a change made through one
process is followed by every web and worker process within seconds, with or without Redis.

Keys: primary_gateway (str | None), fallback_mode (bool), simplified_flow (bool),
credentials_version and db_connections_version (counters bumped to ask every process to
reload gateway keys / reopen database connections).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from core.actors import Actor
from core.models import RuntimeSetting

PRIMARY_GATEWAY = "primary_gateway"
FALLBACK_MODE = "fallback_mode"
SIMPLIFIED_FLOW = "simplified_flow"
CREDENTIALS_VERSION = "credentials_version"
DB_CONNECTIONS_VERSION = "db_connections_version"

_lock = threading.Lock()
_snapshot: dict[str, Any] = {}
_snapshot_at = 0.0


def _refresh_seconds() -> float:
    return settings.FLOWPAY_RUNTIME_REFRESH_SECONDS


def runtime_snapshot() -> dict[str, Any]:
    """All switches, at most FLOWPAY_RUNTIME_REFRESH_SECONDS old."""
    global _snapshot, _snapshot_at
    now = time.monotonic()
    if now - _snapshot_at < _refresh_seconds():
        return _snapshot
    try:
        fresh = dict(RuntimeSetting.objects.values_list("key", "value"))
    except DatabaseError:
        return _snapshot  # keep serving the last known switches while the database is away
    with _lock:
        _snapshot, _snapshot_at = fresh, now
    return fresh


def runtime_invalidate_local_cache() -> None:
    global _snapshot_at
    _snapshot_at = 0.0


def runtime_get(key: str, default: Any = None) -> Any:
    return runtime_snapshot().get(key, default)


@transaction.atomic
def runtime_set(*, key: str, value: Any, actor: Actor, reason: str = "") -> Any:
    """Persist a switch with who set it and why; returns the previous value. The audit entry
    is the caller's to write in the same transaction (backoffice.ops does): the kernel imports
    no app, the audit log included."""
    previous = RuntimeSetting.objects.select_for_update().filter(key=key).values_list("value", flat=True).first()
    RuntimeSetting.objects.update_or_create(
        key=key, defaults={"value": value, "updated_by": actor.id[:150], "reason": reason[:500]},
    )
    runtime_invalidate_local_cache()
    return previous


@transaction.atomic
def runtime_bump(*, key: str, actor: Actor, reason: str = "") -> int:
    """Increment a counter that every process watches (reload requests); returns the new
    value. As with runtime_set, the caller writes the audit entry."""
    RuntimeSetting.objects.get_or_create(key=key, defaults={"value": 0, "updated_by": actor.id[:150]})
    row = RuntimeSetting.objects.select_for_update().get(key=key)
    row.value = int(row.value or 0) + 1
    row.updated_by = actor.id[:150]
    row.reason = reason[:500]
    row.save(update_fields=["value", "updated_by", "reason", "updated_at"])
    runtime_invalidate_local_cache()
    return row.value


def fallback_mode_enabled() -> bool:
    return bool(runtime_get(FALLBACK_MODE, False))


def simplified_flow_enabled() -> bool:
    """Degraded mode for disaster recovery: non-essential steps (advanced fraud rules,
    merchant webhook fan-out) are skipped and caught up when it is switched off."""
    return bool(runtime_get(SIMPLIFIED_FLOW, False))


def credentials_version() -> int:
    return int(runtime_get(CREDENTIALS_VERSION, 0) or 0)


_db_version_seen: int | None = None


def follow_db_connection_refresh() -> bool:
    """Called at safe points (request start, task start): when an operator asked every
    process to refresh its database connections, close them here; Django reopens on use.
    Returns True when connections were closed."""
    global _db_version_seen
    version = int(runtime_get(DB_CONNECTIONS_VERSION, 0) or 0)
    if _db_version_seen is None:
        _db_version_seen = version
        return False
    if version == _db_version_seen:
        return False
    _db_version_seen = version
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()
    return True
