"""Back-office admin of the ledger (django-unfold).

The books are read-only here: accounts, ledger transactions with their entries, payouts and
verification runs are written only by the services. A correction is a ledger adjustment,
requested with a reason by a finance or admin user and posted only when another one
approves it (four eyes, as large refunds); every step calls the service as the staff user,
so it is audited with them. The pages open to staff holding ledger.read (finance, support,
auditor, admin); requests and decisions need ledger.adjust and ledger.adjust_approve. A
merchant's ledger terms are edited by ledger.adjust holders (audited, with field history).
"""

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.decorators import action

from core.admin import ReadOnlyModelAdmin, ReadOnlyTabularInline, staff_can
from core.admin import staff_actor as _staff_actor
from core.errors import FlowPayError
from core.form_tokens import ALREADY_SUBMITTED, form_token_claim, form_token_issue
from core.money import format_minor_units
from core.permissions import Capability
from ledger.forms import AdjustmentRejectForm, AdjustmentRequestForm
from ledger.models import (
    LedgerAccount,
    LedgerAdjustment,
    LedgerEntry,
    LedgerTransaction,
    LedgerVerificationRun,
    MerchantLedgerSettings,
    Payout,
)
from ledger.services.adjustments import ledger_adjustment_approve, ledger_adjustment_reject, ledger_adjustment_request
from ledger.services.merchant_settings import merchant_ledger_settings_save


class LedgerReadAccess:
    """Staff holding ledger.read open these pages without per-model Django permissions."""

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or staff_can(request, Capability.LEDGER_READ)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or staff_can(request, Capability.LEDGER_READ)


@admin.register(LedgerAccount)
class LedgerAccountAdmin(LedgerReadAccess, ReadOnlyModelAdmin):
    actions = None
    list_display = ["id", "merchant", "livemode", "code", "gateway", "currency", "balance_display", "pending_display", "version"]
    list_filter = ["livemode", "code", "gateway", "currency"]
    search_fields = ["merchant__public_id", "merchant__name"]
    list_select_related = ["merchant"]
    show_full_result_count = False

    @admin.display(description="balance")
    def balance_display(self, obj: LedgerAccount) -> str:
        return format_minor_units(obj.balance, obj.currency)

    @admin.display(description="pending")
    def pending_display(self, obj: LedgerAccount) -> str:
        return format_minor_units(obj.pending_balance, obj.currency)


class LedgerEntryInline(LedgerReadAccess, ReadOnlyTabularInline):
    model = LedgerEntry
    fields = ["account", "side", "phase", "amount", "account_version", "balance_after", "pending_after"]
    show_change_link = False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(LedgerReadAccess, ReadOnlyModelAdmin):
    actions = None
    list_display = ["public_id", "kind", "balance_type", "merchant", "livemode", "currency", "amount", "fee", "net",
                    "source_id", "created_at"]
    list_filter = ["livemode", "kind", "balance_type", "currency", ("created_at", RangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["public_id", "source_id", "idempotency_key", "merchant__public_id"]
    list_select_related = ["merchant"]
    show_full_result_count = False
    inlines = [LedgerEntryInline]


@admin.register(Payout)
class PayoutAdmin(LedgerReadAccess, ReadOnlyModelAdmin):
    actions = None
    list_display = ["public_id", "merchant", "amount_display", "status", "automatic", "gateway", "created_at"]
    list_filter = ["livemode", "status", "automatic", "gateway", ("created_at", RangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["public_id", "gateway_reference", "merchant__public_id"]
    list_select_related = ["merchant"]
    show_full_result_count = False

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Payout) -> str:
        return format_minor_units(obj.amount, obj.currency)


@admin.register(LedgerVerificationRun)
class LedgerVerificationRunAdmin(LedgerReadAccess, ReadOnlyModelAdmin):
    actions = None
    list_display = ["finished_at", "ok", "problem_count", "merchant", "imbalance", "run_by"]
    list_filter = ["ok"]


@admin.register(MerchantLedgerSettings)
class MerchantLedgerSettingsAdmin(LedgerReadAccess, ModelAdmin):
    list_display = ["merchant", "availability_delay_days", "fee_percent_bps", "fee_fixed", "dispute_fee", "payout_schedule",
                    "payout_weekday", "updated_at"]
    list_filter = ["payout_schedule"]
    search_fields = ["merchant__public_id", "merchant__name"]
    list_select_related = ["merchant"]

    def _may_edit(self, request) -> bool:
        return staff_can(request, Capability.LEDGER_ADJUST)

    def has_add_permission(self, request):
        return super().has_add_permission(request) or self._may_edit(request)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) or self._may_edit(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return ["merchant"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        merchant_ledger_settings_save(settings_row=obj, actor=_staff_actor(request))


@admin.register(LedgerAdjustment)
class LedgerAdjustmentAdmin(LedgerReadAccess, ReadOnlyModelAdmin):
    list_display = ["public_id", "merchant", "livemode", "amount_display", "debit_code", "credit_code", "status",
                    "requested_by_id", "approved_by", "created_at"]
    list_filter = ["livemode", "status", "currency", ("created_at", RangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["public_id", "merchant__public_id", "source_id", "requested_by_id"]
    list_select_related = ["merchant", "approved_by"]
    show_full_result_count = False
    actions = None
    actions_list = ["request_adjustment"]
    actions_detail = ["approve_detail", "reject_detail"]

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: LedgerAdjustment) -> str:
        return format_minor_units(obj.amount, obj.currency)

    def has_request_permission(self, request, obj=None):
        return staff_can(request, Capability.LEDGER_ADJUST)

    def has_approve_permission(self, request, obj=None):
        return staff_can(request, Capability.LEDGER_ADJUST_APPROVE)

    @action(description="Request an adjustment", url_path="request", permissions=["request"], icon="add")
    def request_adjustment(self, request):
        changelist_url = reverse("admin:ledger_ledgeradjustment_changelist")
        form = AdjustmentRequestForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            if not form_token_claim(request):
                self.message_user(request, ALREADY_SUBMITTED, messages.WARNING)
                return HttpResponseRedirect(changelist_url)
            data = form.cleaned_data
            try:
                adjustment = ledger_adjustment_request(
                    merchant_id=data["merchant"].pk, livemode=data["livemode"], currency=data["currency"],
                    amount=data["amount"], debit_code=data["debit_code"], credit_code=data["credit_code"],
                    gateway=data["gateway"].strip(), balance_type=data["balance_type"], reason=data["reason"],
                    source_type="reconciliation_item" if data["source_id"] else "", source_id=data["source_id"],
                    actor=_staff_actor(request),
                )
            except FlowPayError as exc:
                form.add_error(exc.param if exc.param in form.fields else None, exc.message)
            else:
                self.message_user(request, f"{adjustment.public_id}: waiting for a second finance or admin approval.",
                                  messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:ledger_ledgeradjustment_change", args=[adjustment.pk]))
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Request a ledger adjustment",
            "form": form, "form_token": form_token_issue(request), "changelist_url": changelist_url,
        }
        return TemplateResponse(request, "admin/ledger/request_adjustment.html", context)

    def _summary(self, adjustment: LedgerAdjustment) -> list[str]:
        gateway = f" ({adjustment.gateway})" if adjustment.gateway else ""
        return [
            f"{format_minor_units(adjustment.amount, adjustment.currency)} from {adjustment.debit_code} to "
            f"{adjustment.credit_code}{gateway}, merchant {adjustment.merchant.public_id} "
            f"({'live' if adjustment.livemode else 'test'}), requested by {adjustment.requested_by_id}.",
            f"Reason: {adjustment.reason}",
        ]

    @action(description="Approve", url_path="approve", permissions=["approve"], icon="check")
    def approve_detail(self, request, object_id):
        return self._confirm(
            request, object_id, verb="Approve", confirm_label="Approve and post",
            perform=lambda obj, data: (ledger_adjustment_approve(adjustment_id=obj.pk, actor=_staff_actor(request)), "posted")[1],
        )

    @action(description="Reject", url_path="reject", permissions=["approve"], icon="block")
    def reject_detail(self, request, object_id):
        return self._confirm(
            request, object_id, verb="Reject", confirm_label="Reject", form_class=AdjustmentRejectForm,
            perform=lambda obj, data: (ledger_adjustment_reject(
                adjustment_id=obj.pk, actor=_staff_actor(request), reason=data.get("reason", "")), "rejected")[1],
        )

    def _confirm(self, request, object_id: str, *, verb: str, confirm_label: str, perform: Callable[[object, dict], str],
                 form_class=None):
        """GET: a confirmation page; POST: the service once (a one-time form token), then
        back to the adjustment's page with the result."""
        adjustment = self.get_object(request, unquote(object_id))
        if adjustment is None:
            raise Http404("No such adjustment.")
        change_url = reverse("admin:ledger_ledgeradjustment_change", args=[adjustment.pk])
        form = form_class(request.POST if request.method == "POST" else None) if form_class else None
        if request.method == "POST" and (form is None or form.is_valid()):
            if not form_token_claim(request):
                self.message_user(request, f"{adjustment}: {ALREADY_SUBMITTED}", messages.WARNING)
                return HttpResponseRedirect(change_url)
            try:
                done = perform(adjustment, form.cleaned_data if form else {})
            except FlowPayError as exc:
                self.message_user(request, f"{adjustment}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{adjustment}: {done}.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": f"{verb} adjustment {adjustment}",
            "summary": self._summary(adjustment), "form": form, "confirm_label": confirm_label, "change_url": change_url,
            "object": adjustment, "form_token": form_token_issue(request),
        }
        return TemplateResponse(request, "admin/ledger/confirm.html", context)
