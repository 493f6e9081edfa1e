from rest_framework import serializers

from core.api.serializers import CreatedRangeMixin, InputSerializer, LivemodeFilterMixin
from core.representations import utc_iso
from webhooks.events import EventType
from webhooks.models import WebhookDelivery
from webhooks.services.deliveries import event_document


class WebhookEndpointCreateInput(InputSerializer):
    # The event types (or '*') webhook_endpoint_create accepts.
    schema_constraints = {"properties": {"enabledEvents": {"items": {"enum": [*(t.value for t in EventType), "*"]}}}}

    url = serializers.URLField(max_length=2000)
    enabled_events = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list, max_length=50)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class WebhookEndpointListFilters(LivemodeFilterMixin, InputSerializer):
    """No filter but the staff mode filter: unknown parameters are refused."""


class WebhookEndpointOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    livemode = serializers.BooleanField()
    url = serializers.CharField()
    description = serializers.CharField()
    enabled_events = serializers.JSONField()
    status = serializers.CharField()
    created_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "webhook_endpoint"

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)


class WebhookEndpointCreatedOutput(WebhookEndpointOutput):
    # The signing secret: returned once, in the answer to the creation.
    secret = serializers.CharField()


class EventOutput(serializers.Serializer):
    """An event as merchants receive it: the same document as the webhook body."""

    id = serializers.CharField()
    object = serializers.CharField()
    livemode = serializers.BooleanField()
    type = serializers.CharField()
    created = serializers.IntegerField(help_text="Unix seconds")
    created_at = serializers.DateTimeField()
    data = serializers.JSONField(help_text='{"object": <the object as the API returns it>}')

    def to_representation(self, instance):
        return event_document(instance)


class EventListFilters(LivemodeFilterMixin, CreatedRangeMixin, InputSerializer):
    type = serializers.ChoiceField(choices=[event_type.value for event_type in EventType], required=False)


class WebhookDeliveryOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    event = serializers.CharField(source="event.public_id")
    event_type = serializers.CharField(source="event.type")
    endpoint = serializers.CharField(source="endpoint.public_id")
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    next_attempt_at = serializers.SerializerMethodField()
    delivered_at = serializers.SerializerMethodField()
    created_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "webhook_delivery"

    def get_next_attempt_at(self, obj) -> str | None:
        return utc_iso(obj.next_attempt_at) if obj.status in (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING) else None

    def get_delivered_at(self, obj) -> str | None:
        return utc_iso(obj.delivered_at)

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)


class WebhookDeliveryListFilters(LivemodeFilterMixin, InputSerializer):
    endpoint = serializers.CharField(max_length=40, required=False)
    event = serializers.CharField(max_length=40, required=False)
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.values, required=False)
