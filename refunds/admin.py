"""Back-office admin for refunds and chargebacks (django-unfold).

Money is read-only here, as in payments.admin: rows move through their state machines only
through the services, offered as actions (on the list) and buttons (on an object's page,
each with a confirmation form), always as the staff user, so every step is audited with
them. Access follows the staff capabilities (core.permissions): backoffice.refunds opens
the pages (support, finance, auditor, admin), refund.retry and chargeback.respond act on
them, refund.approve (four-eyes) and chargeback.outcome need finance or admin. Reasons and
evidence are rendered escaped.
"""

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.decorators import action

from core.admin import ReadOnlyModelAdmin, ReadOnlyTabularInline, staff_can
from core.admin import run_per_row as _run_per_row
from core.admin import staff_actor as _staff_actor
from core.errors import FlowPayError
from core.form_tokens import ALREADY_SUBMITTED, form_token_claim, form_token_issue
from core.money import format_minor_units
from core.permissions import Capability
from refunds.forms import ChargebackOutcomeForm, RefundRejectForm
from refunds.models import Chargeback, ChargebackEvidence, ChargebackStatus, Refund, RefundStatus
from refunds.services.chargebacks import chargeback_accept, chargeback_record_outcome
from refunds.services.create import refund_approve, refund_reject
from refunds.services.recovery import refund_retry


class RoleAccessMixin:
    """Staff holding backoffice.refunds open these pages without per-model Django permissions."""

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or staff_can(request, Capability.BACKOFFICE_REFUNDS)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or staff_can(request, Capability.BACKOFFICE_REFUNDS)

    def confirm_view(
        self, request, object_id: str, *, title: str, summary: list[str], confirm_label: str,
        perform: Callable[[object, dict], str], form_class=None,
    ):
        """GET: a confirmation page (with an optional form); POST: run the service once and
        go back to the object's page with the result as a message. The page carries a
        one-time token (core.form_tokens): submitted twice, the service runs once."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404("No such object.")
        change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        form = form_class(request.POST if request.method == "POST" else None) if form_class else None
        if request.method == "POST" and (form is None or form.is_valid()):
            if not form_token_claim(request):
                self.message_user(request, f"{obj}: {ALREADY_SUBMITTED}", messages.WARNING)
                return HttpResponseRedirect(change_url)
            try:
                done = perform(obj, form.cleaned_data if form else {})
            except FlowPayError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{obj}: {done}.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": title, "summary": summary,
            "form": form, "confirm_label": confirm_label, "change_url": change_url, "object": obj,
            "form_token": form_token_issue(request),
        }
        return TemplateResponse(request, "admin/refunds/confirm.html", context)


# --- refunds -------------------------------------------------------------------------
@admin.register(Refund)
class RefundAdmin(RoleAccessMixin, ReadOnlyModelAdmin):
    list_display = [
        "public_id", "transaction", "merchant", "amount_display", "status", "method", "reason",
        "initiated_by", "attempts", "created_at",
    ]
    list_filter = ["livemode", "status", "refund_to_original_method", "approval_required", "gateway", ("created_at", RangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["public_id", "transaction__public_id", "gateway_reference", "initiated_by_id"]
    list_select_related = ["transaction", "merchant"]
    show_full_result_count = False
    actions = ["approve_selected", "reject_selected", "retry_selected"]
    actions_detail = ["approve_detail", "reject_detail", "retry_detail"]
    fieldsets = [
        (None, {"fields": ["public_id", "transaction", "merchant", "status", "amount_display", "amount", "currency",
                           "reason", "refund_to_original_method", "method"]}),
        ("Requested by", {"fields": ["initiated_by_type", "initiated_by_id", "requested_by_user"]}),
        ("Approval (four-eyes)", {"fields": ["approval_required", "approved_by", "approved_at", "rejected_by",
                                             "rejected_at", "rejection_reason"]}),
        ("Gateway", {"fields": ["gateway", "gateway_reference", "idempotency_key", "attempts", "last_attempt_at",
                                "next_retry_at", "outcome_unknown", "failure_code", "failure_message", "holds_reservation",
                                "key_sent_at", "in_flight_until"]}),
        ("Timeline", {"fields": ["processing_started_at", "succeeded_at", "failed_at", "created_at", "updated_at"]}),
    ]

    def get_fields(self, request, obj=None):
        return [field for _, options in self.fieldsets for field in options["fields"]]

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Refund) -> str:
        return format_minor_units(obj.amount, obj.currency)

    @admin.display(description="initiated by")
    def initiated_by(self, obj: Refund) -> str:
        return f"{obj.initiated_by_type}:{obj.initiated_by_id}"

    def has_approve_permission(self, request, obj=None):
        return staff_can(request, Capability.REFUND_APPROVE)

    def has_retry_permission(self, request, obj=None):
        return staff_can(request, Capability.REFUND_RETRY)

    # List actions: one service call per row (each in its own DB transaction).
    @admin.action(description="Approve selected refunds (four-eyes)", permissions=["approve"])
    def approve_selected(self, request, queryset):
        actor = _staff_actor(request)
        rows = queryset.filter(status=RefundStatus.REQUIRES_APPROVAL).values_list("pk", "public_id")
        _run_per_row(self, request, rows, lambda pk: refund_approve(refund_id=pk, actor=actor), "approved")

    @admin.action(description="Reject selected refunds awaiting approval", permissions=["approve"])
    def reject_selected(self, request, queryset):
        actor = _staff_actor(request)
        rows = queryset.filter(status=RefundStatus.REQUIRES_APPROVAL).values_list("pk", "public_id")
        _run_per_row(self, request, rows, lambda pk: refund_reject(refund_id=pk, actor=actor), "rejected")

    @admin.action(description="Retry selected failed refunds", permissions=["retry"])
    def retry_selected(self, request, queryset):
        actor = _staff_actor(request)
        rows = queryset.filter(status=RefundStatus.FAILED).values_list("pk", "public_id")
        _run_per_row(self, request, rows, lambda pk: refund_retry(refund_id=pk, actor=actor), "queued again")

    # Buttons on a refund's page.
    def _summary(self, refund: Refund) -> list[str]:
        return [
            f"{format_minor_units(refund.amount, refund.currency)} on {refund.transaction.public_id}, "
            f"requested by {refund.initiated_by_type}:{refund.initiated_by_id}.",
            f"Reason: {refund.reason}",
        ]

    @action(description="Approve", url_path="approve", permissions=["approve"], icon="check")
    def approve_detail(self, request, object_id):
        refund = self.get_object(request, unquote(object_id))
        return self.confirm_view(
            request, object_id, title=f"Approve refund {refund}", summary=self._summary(refund) if refund else [],
            confirm_label="Approve",
            perform=lambda obj, data: (refund_approve(refund_id=obj.pk, actor=_staff_actor(request)), "approved")[1],
        )

    @action(description="Reject", url_path="reject", permissions=["approve"], icon="block")
    def reject_detail(self, request, object_id):
        refund = self.get_object(request, unquote(object_id))
        return self.confirm_view(
            request, object_id, title=f"Reject refund {refund}", summary=self._summary(refund) if refund else [],
            confirm_label="Reject", form_class=RefundRejectForm,
            perform=lambda obj, data: (
                refund_reject(refund_id=obj.pk, actor=_staff_actor(request), reason=data.get("reason", "")), "rejected"
            )[1],
        )

    @action(description="Retry", url_path="retry", permissions=["retry"], icon="replay")
    def retry_detail(self, request, object_id):
        refund = self.get_object(request, unquote(object_id))
        return self.confirm_view(
            request, object_id, title=f"Retry refund {refund}", summary=self._summary(refund) if refund else [],
            confirm_label="Retry",
            perform=lambda obj, data: (refund_retry(refund_id=obj.pk, actor=_staff_actor(request)), "queued again")[1],
        )


# --- chargebacks -----------------------------------------------------------------------
class ChargebackEvidenceInline(RoleAccessMixin, ReadOnlyTabularInline):
    model = ChargebackEvidence
    fields = ["text", "files", "submitted_by_type", "submitted_by_id", "submitted_at"]
    show_change_link = False


@admin.register(Chargeback)
class ChargebackAdmin(RoleAccessMixin, ReadOnlyModelAdmin):
    list_display = [
        "public_id", "transaction", "merchant", "chargeback_reference", "amount_display", "status", "reason",
        "evidence_due_by", "created_at",
    ]
    list_filter = ["livemode", "status", "gateway", ("evidence_due_by", RangeDateTimeFilter), ("created_at", RangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["public_id", "chargeback_reference", "transaction__public_id", "gateway_reference"]
    list_select_related = ["transaction", "merchant"]
    show_full_result_count = False
    inlines = [ChargebackEvidenceInline]
    actions = ["accept_selected", "mark_won_selected", "mark_lost_selected"]
    actions_detail = ["accept_detail", "outcome_detail"]

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Chargeback) -> str:
        return format_minor_units(obj.amount, obj.currency)

    def has_respond_permission(self, request, obj=None):
        return staff_can(request, Capability.CHARGEBACK_RESPOND)

    def has_outcome_permission(self, request, obj=None):
        return staff_can(request, Capability.CHARGEBACK_OUTCOME)

    @admin.action(description="Accept selected chargebacks (funds withdrawn)", permissions=["respond"])
    def accept_selected(self, request, queryset):
        actor = _staff_actor(request)
        rows = queryset.filter(status=ChargebackStatus.NEEDS_RESPONSE).values_list("pk", "public_id")
        _run_per_row(self, request, rows, lambda pk: chargeback_accept(chargeback_id=pk, actor=actor), "accepted")

    @admin.action(description="Record selected chargebacks as won (funds reinstated)", permissions=["outcome"])
    def mark_won_selected(self, request, queryset):
        actor = _staff_actor(request)
        rows = queryset.values_list("pk", "public_id")
        _run_per_row(self, request, rows, lambda pk: chargeback_record_outcome(chargeback_id=pk, outcome="won", actor=actor), "won")

    @admin.action(description="Record selected chargebacks as lost (funds withdrawn)", permissions=["outcome"])
    def mark_lost_selected(self, request, queryset):
        actor = _staff_actor(request)
        rows = queryset.values_list("pk", "public_id")
        _run_per_row(self, request, rows, lambda pk: chargeback_record_outcome(chargeback_id=pk, outcome="lost", actor=actor), "lost")

    def _summary(self, chargeback: Chargeback) -> list[str]:
        return [
            f"{format_minor_units(chargeback.amount, chargeback.currency)} on {chargeback.transaction.public_id}, "
            f"reference {chargeback.chargeback_reference}, {chargeback.status}.",
            f"Reason: {chargeback.reason}",
        ]

    @action(description="Accept", url_path="accept", permissions=["respond"], icon="gavel")
    def accept_detail(self, request, object_id):
        chargeback = self.get_object(request, unquote(object_id))
        return self.confirm_view(
            request, object_id, title=f"Accept chargeback {chargeback}",
            summary=self._summary(chargeback) if chargeback else [], confirm_label="Accept (funds withdrawn)",
            perform=lambda obj, data: (chargeback_accept(chargeback_id=obj.pk, actor=_staff_actor(request)), "accepted")[1],
        )

    @action(description="Record outcome", url_path="outcome", permissions=["outcome"], icon="flag")
    def outcome_detail(self, request, object_id):
        chargeback = self.get_object(request, unquote(object_id))

        def perform(obj, data):
            chargeback_record_outcome(chargeback_id=obj.pk, outcome=data["outcome"], actor=_staff_actor(request))
            return f"recorded as {data['outcome']}"

        return self.confirm_view(
            request, object_id, title=f"Record the outcome of chargeback {chargeback}",
            summary=self._summary(chargeback) if chargeback else [], confirm_label="Record", form_class=ChargebackOutcomeForm,
            perform=perform,
        )
