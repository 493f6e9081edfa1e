"""Back-office admin of reconciliation runs and items (django-unfold).

Read-only rows, filtered by gateway, day, category and state; items move through their
state machine only through the services, offered as list actions (investigate) and buttons
on an item's page (investigate, resolve or ignore with a reason, approve or reject a ledger
adjustment), always as the staff user, so every decision is audited with them. Access:
reconciliation.read opens the pages, reconciliation.resolve acts (finance, admin). Each
confirmation page carries a one-time token: submitted twice, the service runs once.
"""

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.contrib.filters.admin import RangeDateFilter
from unfold.decorators import action

from core.admin import ReadOnlyModelAdmin, run_per_row, staff_actor, staff_can
from core.errors import FlowPayError
from core.form_tokens import ALREADY_SUBMITTED, form_token_claim, form_token_issue
from core.money import format_minor_units
from core.permissions import Capability
from reconciliation.forms import ItemNoteForm, ItemRejectForm, ItemResolveForm
from reconciliation.models import ItemState, ReconciliationItem, ReconciliationRun
from reconciliation.services.items import (
    reconciliation_item_approve_adjustment,
    reconciliation_item_investigate,
    reconciliation_item_reject_adjustment,
    reconciliation_item_resolve,
)


class ReconciliationAccessMixin:
    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or staff_can(request, Capability.RECONCILIATION_READ)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or staff_can(request, Capability.RECONCILIATION_READ)

    def has_resolve_permission(self, request, obj=None):
        return staff_can(request, Capability.RECONCILIATION_RESOLVE)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReconciliationAccessMixin, ReadOnlyModelAdmin):
    list_display = ["public_id", "gateway", "settlement_date", "attempt", "source", "discrepancies", "local_records",
                    "gateway_rows", "awaiting_settlement", "triggered_by", "finished_at"]
    list_filter = ["gateway", "source", ("settlement_date", RangeDateFilter)]
    list_filter_submit = True
    search_fields = ["public_id", "source_name"]
    show_full_result_count = False
    actions = None


@admin.register(ReconciliationItem)
class ReconciliationItemAdmin(ReconciliationAccessMixin, ReadOnlyModelAdmin):
    list_display = ["public_id", "gateway", "settlement_date", "category", "state", "kind", "local_reference",
                    "gateway_reference", "flowpay_display", "gateway_display", "pending_resolution", "occurrences"]
    list_filter = ["gateway", "category", "state", "pending_resolution", ("settlement_date", RangeDateFilter)]
    list_filter_submit = True
    search_fields = ["public_id", "local_reference", "gateway_reference"]
    list_select_related = ["merchant", "last_run"]
    show_full_result_count = False
    actions = ["investigate_selected"]
    actions_detail = ["investigate_detail", "resolve_detail", "approve_detail", "reject_detail"]

    @admin.display(description="FlowPay")
    def flowpay_display(self, obj: ReconciliationItem) -> str:
        return "-" if obj.flowpay_amount is None else format_minor_units(obj.flowpay_amount, obj.flowpay_currency or "USD")

    @admin.display(description="gateway")
    def gateway_display(self, obj: ReconciliationItem) -> str:
        return "-" if obj.gateway_amount is None else format_minor_units(obj.gateway_amount, obj.gateway_currency or "USD")

    @admin.action(description="Investigate selected open items", permissions=["resolve"])
    def investigate_selected(self, request, queryset):
        actor = staff_actor(request)
        rows = queryset.filter(state=ItemState.OPEN).values_list("pk", "public_id")
        run_per_row(self, request, rows, lambda pk: reconciliation_item_investigate(item_id=pk, actor=actor), "investigating")

    def _summary(self, item: ReconciliationItem | None) -> list[str]:
        if item is None:
            return []
        lines = [f"{item.category} on {item.gateway} {item.settlement_date}: FlowPay {item.local_reference or '-'}, "
                 f"gateway {item.gateway_reference or '-'}.", f"FlowPay {self.flowpay_display(item)}, gateway "
                 f"{self.gateway_display(item)}; diff: {item.diff}"]
        if item.pending_resolution:
            lines.append(f"Pending {item.pending_resolution} requested by {item.requested_by}: {item.pending_reason}")
        return lines

    def _confirm(self, request, object_id: str, *, title: str, confirm_label: str, form_class,
                 perform: Callable[[ReconciliationItem, dict], str]):
        """GET: a confirmation page with its form; POST: run the service once, back to the item."""
        item = self.get_object(request, unquote(object_id))
        if item is None:
            raise Http404("No such item.")
        change_url = reverse("admin:reconciliation_reconciliationitem_change", args=[item.pk])
        form = form_class(request.POST if request.method == "POST" else None) if form_class else None
        if request.method == "POST" and (form is None or form.is_valid()):
            if not form_token_claim(request):
                self.message_user(request, f"{item}: {ALREADY_SUBMITTED}", messages.WARNING)
                return HttpResponseRedirect(change_url)
            try:
                done = perform(item, form.cleaned_data if form else {})
            except FlowPayError as exc:
                self.message_user(request, f"{item}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{item}: {done}.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": title, "summary": self._summary(item),
            "form": form, "confirm_label": confirm_label, "change_url": change_url, "object": item,
            "form_token": form_token_issue(request),
        }
        return TemplateResponse(request, "admin/reconciliation/confirm.html", context)

    @action(description="Investigate", url_path="investigate", permissions=["resolve"], icon="search")
    def investigate_detail(self, request, object_id):
        def perform(item, data):
            reconciliation_item_investigate(item_id=item.pk, actor=staff_actor(request), note=data.get("note", ""))
            return "investigating"

        return self._confirm(request, object_id, title="Investigate this item", confirm_label="Investigate",
                             form_class=ItemNoteForm, perform=perform)

    @action(description="Resolve", url_path="resolve", permissions=["resolve"], icon="task_alt")
    def resolve_detail(self, request, object_id):
        def perform(item, data):
            done = reconciliation_item_resolve(item_id=item.pk, resolution=data["resolution"], reason=data["reason"],
                                               actor=staff_actor(request), merchant_public_id=data.get("merchant") or None)
            return "ledger adjustment requested: a second person approves it" if done.pending_resolution else done.state

        return self._confirm(request, object_id, title="Resolve this item", confirm_label="Resolve",
                             form_class=ItemResolveForm, perform=perform)

    @action(description="Approve adjustment", url_path="approve", permissions=["resolve"], icon="check")
    def approve_detail(self, request, object_id):
        def perform(item, data):
            reconciliation_item_approve_adjustment(item_id=item.pk, actor=staff_actor(request))
            return "ledger adjustment approved and posted"

        return self._confirm(request, object_id, title="Approve the ledger adjustment (four-eyes)",
                             confirm_label="Approve", form_class=None, perform=perform)

    @action(description="Reject adjustment", url_path="reject", permissions=["resolve"], icon="block")
    def reject_detail(self, request, object_id):
        def perform(item, data):
            reconciliation_item_reject_adjustment(item_id=item.pk, actor=staff_actor(request), reason=data["reason"])
            return "ledger adjustment rejected"

        return self._confirm(request, object_id, title="Reject the ledger adjustment", confirm_label="Reject",
                             form_class=ItemRejectForm, perform=perform)
