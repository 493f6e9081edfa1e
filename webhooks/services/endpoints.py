from django.db import transaction
from django.utils import timezone

from accounts.models import Merchant
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import ErrorCode, InvalidRequest
from core.idempotency import idempotency_created
from webhooks.events import EventType
from webhooks.models import WebhookEndpoint
from webhooks.services.deliveries import validate_destination
from webhooks.signing import new_endpoint_secret

MAX_ENDPOINTS_PER_MERCHANT = 16


@transaction.atomic
def webhook_endpoint_create(
    *, merchant: Merchant, url: str, enabled_events: list[str], description: str = "", actor: Actor,
    livemode: bool = False, idempotency_record_id: int | None = None,
) -> WebhookEndpoint:
    """`livemode`: the creating API key's environment; the endpoint receives only that mode's events."""
    existing = idempotency_created(WebhookEndpoint, record_id=idempotency_record_id)
    if existing is not None:  # a crashed request re-run under its Idempotency-Key
        return existing
    known = [event_type.value for event_type in EventType]
    unknown = sorted(set(enabled_events) - set(known) - {"*"})
    if unknown:
        raise InvalidRequest(
            f"Unknown event type '{unknown[0][:60]}'. Known types: {', '.join(known)} (or '*').",
            code=ErrorCode.INVALID_EVENT_TYPE, param="enabled_events",
        )
    validate_destination(url)
    # Locks the merchant row: two concurrent creations cannot both pass the limit.
    Merchant.objects.select_for_update().get(pk=merchant.pk)
    if WebhookEndpoint.objects.filter(merchant=merchant, deleted_at__isnull=True).count() >= MAX_ENDPOINTS_PER_MERCHANT:
        raise InvalidRequest(f"A merchant can have at most {MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints.", code=ErrorCode.LIMIT_REACHED)
    endpoint = WebhookEndpoint.objects.create(
        merchant=merchant, livemode=livemode, url=url, description=description, enabled_events=sorted(set(enabled_events)),
        secret=new_endpoint_secret(), idempotency_record_id=idempotency_record_id,
    )
    audit_record(actor=actor, action=AuditAction.WEBHOOK_ENDPOINT_CREATE, target=endpoint,
                 details={"url": url, "enabled_events": endpoint.enabled_events})
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint_id: int, actor: Actor) -> WebhookEndpoint:
    """Soft delete: the endpoint stops receiving events; its delivery history stays."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    if endpoint.deleted_at is None:
        endpoint.deleted_at = timezone.now()
        endpoint.status = WebhookEndpoint.Status.DISABLED
        endpoint.save(update_fields=["deleted_at", "status"])
        audit_record(actor=actor, action=AuditAction.WEBHOOK_ENDPOINT_DELETE, target=endpoint)
    return endpoint
