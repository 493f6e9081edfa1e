"""Read queries of merchant webhooks, scoped to the caller (core.selectors.Scope): another
merchant's id, or one of the other mode, is indistinguishable from a missing one."""

from django.db.models import QuerySet

from core.selectors import Scope, get_by_public_id
from webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint


def webhook_endpoints_list(*, scope: Scope) -> QuerySet[WebhookEndpoint]:
    return scope.apply(WebhookEndpoint.objects.filter(deleted_at__isnull=True))


def webhook_endpoint_get(*, public_id: str, scope: Scope) -> WebhookEndpoint:
    query = WebhookEndpoint.objects.filter(deleted_at__isnull=True)
    return get_by_public_id(query, public_id=public_id, label="webhook endpoint", scope=scope)


def events_list(*, scope: Scope, event_type: str | None = None, created_gte=None, created_lte=None) -> QuerySet[OutboxEvent]:
    query = scope.apply(OutboxEvent.objects.all())
    if event_type:
        query = query.filter(type=event_type)
    if created_gte:
        query = query.filter(created_at__gte=created_gte)
    if created_lte:
        query = query.filter(created_at__lte=created_lte)
    return query


def event_get(*, public_id: str, scope: Scope) -> OutboxEvent:
    return get_by_public_id(OutboxEvent.objects.all(), public_id=public_id, label="event", scope=scope)


# A delivery belongs to its endpoint's merchant and mode.
DELIVERY_SCOPE_FIELDS = {"merchant_field": "endpoint__merchant", "livemode_field": "endpoint__livemode"}


def webhook_deliveries_list(
    *, scope: Scope, endpoint: str | None = None, event: str | None = None, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    query = scope.apply(WebhookDelivery.objects.select_related("event", "endpoint"), **DELIVERY_SCOPE_FIELDS)
    if endpoint:
        query = query.filter(endpoint__public_id=endpoint)
    if event:
        query = query.filter(event__public_id=event)
    if status:
        query = query.filter(status=status)
    return query


def webhook_delivery_get(*, public_id: str, scope: Scope) -> WebhookDelivery:
    query = WebhookDelivery.objects.select_related("event", "endpoint")
    return get_by_public_id(query, public_id=public_id, label="webhook delivery", scope=scope, **DELIVERY_SCOPE_FIELDS)
