from django.db.models import QuerySet

from accounts.models import Merchant
from core.selectors import get_by_public_id
from webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint


def webhook_endpoints_list(*, merchant: Merchant | None) -> QuerySet[WebhookEndpoint]:
    query = WebhookEndpoint.objects.filter(deleted_at__isnull=True)
    return query.filter(merchant=merchant) if merchant is not None else query


def webhook_endpoint_get(*, public_id: str, merchant: Merchant | None) -> WebhookEndpoint:
    return get_by_public_id(webhook_endpoints_list(merchant=merchant), public_id=public_id, label="webhook endpoint")


def events_list(*, merchant: Merchant | None, event_type: str | None = None, created_gte=None, created_lte=None) -> QuerySet[OutboxEvent]:
    query = OutboxEvent.objects.all()
    if merchant is not None:
        query = query.filter(merchant=merchant)
    if event_type:
        query = query.filter(type=event_type)
    if created_gte:
        query = query.filter(created_at__gte=created_gte)
    if created_lte:
        query = query.filter(created_at__lte=created_lte)
    return query


def event_get(*, public_id: str, merchant: Merchant | None) -> OutboxEvent:
    return get_by_public_id(events_list(merchant=merchant), public_id=public_id, label="event")


def webhook_deliveries_list(
    *, merchant: Merchant | None, endpoint: str | None = None, event: str | None = None, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    query = WebhookDelivery.objects.select_related("event", "endpoint")
    if merchant is not None:
        query = query.filter(endpoint__merchant=merchant)
    if endpoint:
        query = query.filter(endpoint__public_id=endpoint)
    if event:
        query = query.filter(event__public_id=event)
    if status:
        query = query.filter(status=status)
    return query


def webhook_delivery_get(*, public_id: str, merchant: Merchant | None) -> WebhookDelivery:
    return get_by_public_id(webhook_deliveries_list(merchant=merchant), public_id=public_id, label="webhook delivery")
