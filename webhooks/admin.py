"""Admin for merchant events: the outbox, webhook endpoints (secrets never shown) and
deliveries, with re-sending as an action that calls the service."""

from django.contrib import admin
from unfold.contrib.filters.admin import RangeDateTimeFilter

from core.admin import ReadOnlyModelAdmin, run_per_row, staff_actor
from webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from webhooks.services.deliveries import webhook_delivery_resend


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyModelAdmin):
    actions = None
    list_display = ["public_id", "merchant", "type", "created_at", "relayed_at"]
    list_filter = ["livemode", "type", ("created_at", RangeDateTimeFilter)]
    search_fields = ["public_id", "merchant__public_id"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyModelAdmin):
    actions = None
    hidden_fields = ("secret",)
    list_display = ["public_id", "merchant", "url", "status", "created_at"]
    list_filter = ["livemode", "status"]
    search_fields = ["public_id", "url", "merchant__public_id"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyModelAdmin):
    list_display = ["public_id", "event", "endpoint", "status", "attempts", "last_status_code", "next_attempt_at"]
    list_filter = ["status", ("created_at", RangeDateTimeFilter)]
    search_fields = ["public_id", "event__public_id", "endpoint__public_id"]
    actions = ["resend"]

    @admin.action(description="Re-send selected dead or delivered deliveries")
    def resend(self, request, queryset):
        run_per_row(
            self, request, queryset.values_list("pk", "public_id"),
            lambda pk: webhook_delivery_resend(delivery_id=pk, actor=staff_actor(request)), "queued to be sent again",
        )
