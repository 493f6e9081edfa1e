"""Admin for the inbox of verified gateway events (inbox.read, inbox.replay: operators and admins)."""

from django.contrib import admin
from unfold.contrib.filters.admin import RangeDateTimeFilter

from core.admin import ReadOnlyModelAdmin, staff_can
from core.admin import run_per_row as _run_per_row
from core.admin import staff_actor as _staff_actor
from core.permissions import Capability
from gateway_events.models import InboundEvent
from gateway_events.services import inbound_event_replay


# --- inbound gateway webhooks ----------------------------------------------------------------
@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyModelAdmin):
    """The inbox of verified gateway events, read-only. Operators (and admins) replay failed
    or ignored events with the action, which calls the same service as
    `manage.py replay_webhook_events` (audited as the staff user)."""

    list_display = ["id", "gateway", "type", "event_id", "object_reference", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "gateway", "type", ("received_at", RangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["event_id", "object_reference", "flowpay_reference"]
    show_full_result_count = False
    actions = ["replay_selected"]

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or staff_can(request, Capability.INBOX_READ)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or staff_can(request, Capability.INBOX_READ)

    def has_replay_permission(self, request):
        return staff_can(request, Capability.INBOX_REPLAY)

    @admin.action(description="Replay selected events (failed, ignored or stalled)", permissions=["replay"])
    def replay_selected(self, request, queryset):
        actor = _staff_actor(request)
        rows = [(pk, f"{gateway} {event_id}") for pk, gateway, event_id in queryset.values_list("pk", "gateway", "event_id")]
        _run_per_row(self, request, rows, lambda pk: inbound_event_replay(inbound_event_id=pk, actor=actor), "queued again")
