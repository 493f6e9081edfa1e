"""Helpers shared by the subscription services: the worker actor, bulk audit entries,
outbox payloads and the merchant's settings."""

from collections.abc import Iterable

from audit.actions import AuditAction, audit_action_checked
from audit.models import AuditEntry
from audit.redaction import redact
from core.actors import Actor
from core.observability.context import get_correlation_id
from subscriptions.models import DunningFinalAction, SubscriptionSettings
from subscriptions.representations import InvoiceOutput, SubscriptionOutput
from webhooks.payloads import api_payload

# Every transition made by the rebill pipeline (scheduler, workers, reaper) is audited as this.
REBILL_ACTOR = Actor.worker("rebill")


def audit_bulk(*, actor: Actor, entries: Iterable[tuple[AuditAction, object, dict]], result: str = "success") -> None:
    """Write many audit entries in one INSERT (same fields as audit.services.audit_record):
    `entries` are (action, target, details). Call it inside the transaction of the changes."""
    correlation_id = (get_correlation_id() or "")[:200]
    rows = [
        AuditEntry(
            actor_type=str(actor.type), actor_id=actor.id[:150],
            merchant_id=getattr(target, "merchant_id", None) or actor.merchant_id,
            action=audit_action_checked(action).value, object_type=target._meta.model_name,
            object_id=str(getattr(target, "public_id", None) or target.pk),
            result=result, details=redact(details or {}), correlation_id=correlation_id, origin_ip=actor.ip,
        )
        for action, target, details in entries
    ]
    if rows:
        AuditEntry.objects.bulk_create(rows)


def dunning_final_action(*, merchant_id: int) -> str:
    value = SubscriptionSettings.objects.filter(merchant_id=merchant_id).values_list("dunning_final_action", flat=True).first()
    return value or DunningFinalAction.UNPAID


def subscription_payload(subscription) -> dict:
    """The subscription as the API renders it (camelCase), for outbox events."""
    return api_payload(SubscriptionOutput, subscription)


def invoice_payload(invoice) -> dict:
    """The invoice as the API renders it (camelCase), for outbox events."""
    return api_payload(InvoiceOutput, invoice)
