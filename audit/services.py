from typing import Any

from django.db import models

from audit.actions import AuditAction, audit_action_checked
from audit.models import AuditEntry
from audit.redaction import redact
from core.actors import Actor
from core.observability.context import get_correlation_id


def audit_entry(
    *,
    actor: Actor,
    action: AuditAction,
    target: models.Model | None = None,
    merchant_id: int | None = None,
    result: str = AuditEntry.Result.SUCCESS,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """One audit entry, built (redacted, timed) but not written: audit_record writes one,
    audit_record_all the entries of one action in one INSERT. `action` must be an
    AuditAction member (TypeError otherwise, a plain string included)."""
    action = audit_action_checked(action)
    if merchant_id is None and target is not None:
        merchant_id = getattr(target, "merchant_id", None)
    if merchant_id is None:
        merchant_id = actor.merchant_id
    return AuditEntry(
        actor_type=str(actor.type),
        actor_id=actor.id[:150],
        merchant_id=merchant_id,
        action=action.value,
        object_type=target._meta.model_name if target is not None else "",
        object_id=str(getattr(target, "public_id", None) or getattr(target, "pk", "") or "") if target is not None else "",
        result=str(result),
        details=redact(details or {}),
        correlation_id=(get_correlation_id() or "")[:200],
        origin_ip=actor.ip,
    )


def audit_record(
    *,
    actor: Actor,
    action: AuditAction,
    target: models.Model | None = None,
    merchant_id: int | None = None,
    result: str = AuditEntry.Result.SUCCESS,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one audit entry. Call it inside the caller's database transaction so that the
    entry exists if and only if the action it records was committed. `action` must be an
    AuditAction member (TypeError otherwise, a plain string included)."""
    entry = audit_entry(actor=actor, action=action, target=target, merchant_id=merchant_id, result=result, details=details)
    entry.save(force_insert=True)
    return entry


def audit_record_all(entries: list[AuditEntry]) -> list[AuditEntry]:
    """Append entries built with audit_entry in one INSERT, inside the caller's database
    transaction (as audit_record). Each is signed as it would be alone, and their ids
    ascend in list order, the order in which the seals of the chain cover them."""
    return AuditEntry.objects.bulk_create(entries)
