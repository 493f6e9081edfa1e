"""The runbook's operator controls. Each one is audited with the operator and the reason,
and takes effect in every web and worker process (core.runtime) within seconds."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction

from audit.actions import AuditAction
from audit.services import audit_record
from core import runtime
from core.actors import Actor
from core.errors import ErrorCode, InvalidRequest
from gateways.credentials import credentials_reload
from gateways.registry import GATEWAY_CLASSES, enabled_gateway_names
from gateways.router import fallback_mode_enabled, primary_gateway_name, simplified_flow_enabled

# Every switch is audited under its own action; a key missing here cannot be changed.
SWITCH_AUDIT_ACTIONS = {
    runtime.PRIMARY_GATEWAY: AuditAction.RUNTIME_PRIMARY_GATEWAY,
    runtime.FALLBACK_MODE: AuditAction.RUNTIME_FALLBACK_MODE,
    runtime.SIMPLIFIED_FLOW: AuditAction.RUNTIME_SIMPLIFIED_FLOW,
    runtime.CREDENTIALS_VERSION: AuditAction.RUNTIME_CREDENTIALS_VERSION,
    runtime.DB_CONNECTIONS_VERSION: AuditAction.RUNTIME_DB_CONNECTIONS_VERSION,
}


@transaction.atomic
def ops_switch_set(*, key: str, value, reason: str, actor: Actor) -> None:
    """Set a runtime switch and audit who changed it, from what, and why, in one transaction."""
    action = SWITCH_AUDIT_ACTIONS[key]
    previous = runtime.runtime_set(key=key, value=value, actor=actor, reason=reason)
    audit_record(actor=actor, action=action, details={"previous": previous, "value": value, "reason": reason})


@transaction.atomic
def ops_counter_bump(*, key: str, reason: str, actor: Actor) -> int:
    """Bump a counter every process follows (reload requests) and audit it, in one transaction."""
    action = SWITCH_AUDIT_ACTIONS[key]
    value = runtime.runtime_bump(key=key, actor=actor, reason=reason)
    audit_record(actor=actor, action=action, details={"value": value, "reason": reason})
    return value


def ops_state() -> dict:
    return {
        "primary_gateway": primary_gateway_name(),
        "enabled_gateways": enabled_gateway_names(),
        "fallback_mode": fallback_mode_enabled(),
        "simplified_flow": simplified_flow_enabled(),
        "credentials_version": runtime.credentials_version(),
        "db_connections_version": int(runtime.runtime_get(runtime.DB_CONNECTIONS_VERSION, 0) or 0),
    }


def ops_switch_gateway(*, primary_gateway: str, reason: str, actor: Actor) -> dict:
    enabled = enabled_gateway_names()
    if primary_gateway not in GATEWAY_CLASSES:
        raise InvalidRequest(
            f"Unknown gateway '{primary_gateway[:40]}'. Enabled gateways: {', '.join(enabled)}.",
            code=ErrorCode.UNKNOWN_GATEWAY, param="primary_gateway",
        )
    if primary_gateway not in enabled:
        raise InvalidRequest(
            f"Gateway '{primary_gateway}' is not enabled (FLOWPAY_GATEWAYS={','.join(enabled)}); enable it first.",
            code=ErrorCode.GATEWAY_DISABLED, param="primary_gateway",
        )
    ops_switch_set(key=runtime.PRIMARY_GATEWAY, value=primary_gateway, reason=reason, actor=actor)
    return ops_state()


def ops_set_fallback_mode(*, enabled: bool, reason: str, actor: Actor) -> dict:
    ops_switch_set(key=runtime.FALLBACK_MODE, value=enabled, reason=reason, actor=actor)
    return ops_state()


def ops_set_simplified_flow(*, enabled: bool, reason: str, actor: Actor) -> dict:
    ops_switch_set(key=runtime.SIMPLIFIED_FLOW, value=enabled, reason=reason, actor=actor)
    return ops_state()


def ops_reload_api_keys(*, reason: str, actor: Actor) -> dict:
    """Re-read the environment and secrets file here first: unreadable new keys are refused
    (and the old ones kept) before any other process is asked to reload."""
    try:
        fresh = credentials_reload()
    except ImproperlyConfigured as exc:
        audit_record(actor=actor, action=AuditAction.RUNTIME_CREDENTIALS_RELOAD, result="failure", details={"error": str(exc), "reason": reason})
        raise InvalidRequest(f"The new gateway credentials could not be loaded: {exc}", code=ErrorCode.CREDENTIALS_INVALID) from None
    ops_counter_bump(key=runtime.CREDENTIALS_VERSION, reason=reason, actor=actor)
    return {**ops_state(), "keys": [c.describe() for c in fresh.values()]}


def ops_refresh_db_connections(*, reason: str, actor: Actor) -> dict:
    ops_counter_bump(key=runtime.DB_CONNECTIONS_VERSION, reason=reason, actor=actor)
    # This process too, at once (the bump was committed above; nothing is in flight here).
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()
    return ops_state()
