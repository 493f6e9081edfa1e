from typing import Any

from django.db import models

from audit.actions import AuditAction, audit_action_checked
from audit.models import AuditEntry
from audit.redaction import redact
from core.actors import Actor
from core.observability.context import get_correlation_id


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
    action = audit_action_checked(action)
    if merchant_id is None and target is not None:
        merchant_id = getattr(target, "merchant_id", None)
    if merchant_id is None:
        merchant_id = actor.merchant_id
    return AuditEntry.objects.create(
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
