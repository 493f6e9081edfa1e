"""The transaction page of the back office: a payment with its attempts, refunds and
chargebacks, and the allowed transitions (capture, cancel, refund) as actions that call the
services as the staff user. It spans payments and refunds, so it lives here."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, unquote
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
from payments.models import PaymentAttempt, Transaction
from payments.services.transactions import transaction_cancel, transaction_capture
from refunds.forms import TransactionRefundForm
from refunds.models import Chargeback, Refund, RefundStatus
from refunds.services.create import refund_create
from refunds.services.policy import support_refund_limit


# --- transactions ------------------------------------------------------------------------
class PaymentAttemptInline(ReadOnlyTabularInline):
    model = PaymentAttempt
    fields = [
        "number", "operation", "gateway", "outcome", "amount", "gateway_reference",
        "error_code", "started_at", "finished_at", "latency_ms",
    ]


class RefundInline(ReadOnlyTabularInline):
    model = Refund
    fields = ["public_id", "status", "amount", "method", "reason", "initiated_by_id", "failure_code", "created_at"]

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or staff_can(request, Capability.REFUND_CREATE)


class ChargebackInline(ReadOnlyTabularInline):
    model = Chargeback
    fields = ["public_id", "status", "chargeback_reference", "amount", "reason", "evidence_due_by", "created_at"]

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or staff_can(request, Capability.REFUND_CREATE)


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyModelAdmin):
    """Fully read-only. Capture and void are offered as actions that call the services, so
    they go through the row lock, the gateway and the audit log like an API call. Support's
    manual refund is the "Refund" button of a transaction's page: a form calling the same
    refund service as the API, as the staff user (the four-eyes limits apply)."""

    list_display = ["public_id", "merchant", "amount_display", "status", "gateway", "created_at"]
    list_filter = ["livemode", "status", "gateway", "capture_method", ("created_at", RangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["public_id", "gateway_reference"]
    list_select_related = ["merchant"]
    show_full_result_count = False  # a large table: skip the extra COUNT(*)
    inlines = [PaymentAttemptInline, RefundInline, ChargebackInline]
    actions = ["capture_selected", "cancel_selected"]
    actions_detail = ["refund_detail"]
    fieldsets = [
        (None, {"fields": ["public_id", "merchant", "customer", "status", "livemode"]}),
        ("Money (minor units)", {"fields": [
            "amount_display", "amount", "amount_captured", "amount_refunded", "amount_refund_reserved",
            "amount_disputed", "disputed", "currency", "capture_method",
        ]}),
        ("Gateway", {"fields": [
            "gateway", "gateway_reference", "payment_method", "payment_method_token", "saved_payment_method",
            "failure_code", "failure_message", "next_action",
        ]}),
        ("Details", {"fields": [
            "description", "metadata", "idempotency_record", "processing_started_at", "finalized_at",
            "created_at", "updated_at",
        ]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return flatten_fieldsets(self.fieldsets)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Transaction) -> str:
        return format_minor_units(obj.amount, obj.currency)

    def has_transition_permission(self, request):
        # The admin never edits a transaction's fields; the model's change permission is
        # what allows staff to move it through its state machine.
        return request.user.has_perm("payments.change_transaction")

    @admin.action(description="Capture selected authorized transactions", permissions=["transition"])
    def capture_selected(self, request, queryset):
        actor = _staff_actor(request)
        _run_per_row(
            self, request, queryset.values_list("pk", "public_id"),
            lambda pk: transaction_capture(transaction_id=pk, amount=None, actor=actor), "captured",
        )

    @admin.action(description="Cancel (void) selected transactions", permissions=["transition"])
    def cancel_selected(self, request, queryset):
        actor = _staff_actor(request)
        _run_per_row(
            self, request, queryset.values_list("pk", "public_id"),
            lambda pk: transaction_cancel(transaction_id=pk, actor=actor), "canceled",
        )

    # --- support's manual refund ------------------------------------------------------
    def has_view_permission(self, request, obj=None):
        # Staff who may refund (refund.create) reach a payment's page to do it, and see its
        # refunds and chargebacks there (the inlines above).
        return super().has_view_permission(request, obj) or self.has_refund_permission(request)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self.has_refund_permission(request)

    def has_refund_permission(self, request, obj=None):
        return staff_can(request, Capability.REFUND_CREATE)

    @action(description="Refund", url_path="refund", permissions=["refund"], icon="undo")
    def refund_detail(self, request, object_id):
        """GET: the refund form; POST: refund_create as the staff user, then back to the payment.
        The form carries a one-time token (core.form_tokens): submitted twice, it refunds once."""
        txn = self.get_object(request, unquote(object_id))
        if txn is None:
            raise Http404("No such transaction.")
        change_url = reverse("admin:payments_transaction_change", args=[txn.pk])
        form = TransactionRefundForm(
            request.POST if request.method == "POST" else None, initial={"amount": txn.amount_refundable or None},
        )
        if request.method == "POST" and form.is_valid():
            if not form_token_claim(request):
                self.message_user(request, ALREADY_SUBMITTED, messages.WARNING)
                return HttpResponseRedirect(change_url)
            try:
                refund = refund_create(
                    transaction_id=txn.pk, amount=form.cleaned_data["amount"], reason=form.cleaned_data["reason"],
                    refund_to_original_method=form.cleaned_data["refund_to_original_method"],
                    actor=_staff_actor(request),
                )
            except FlowPayError as exc:
                form.add_error("amount" if exc.param == "amount" else None, exc.message)
            else:
                refund = Refund.objects.get(pk=refund.pk)  # a task run at commit may have moved it
                if refund.status == RefundStatus.REQUIRES_APPROVAL:
                    self.message_user(
                        request, f"{refund.public_id}: above the support limit, waiting for a finance or admin approval.",
                        messages.WARNING,
                    )
                else:
                    self.message_user(request, f"{refund.public_id}: refund {refund.status}.", messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Refund {txn.public_id}",
            "transaction": txn,
            "form": form,
            "form_token": form_token_issue(request),
            "change_url": change_url,
            "captured": format_minor_units(txn.amount_captured, txn.currency),
            "refunded": format_minor_units(txn.amount_refunded, txn.currency),
            "refundable": format_minor_units(txn.amount_refundable, txn.currency),
            "limit": format_minor_units(support_refund_limit(), txn.currency),
            "daily_limit": format_minor_units(settings.FLOWPAY_SUPPORT_REFUND_DAILY_LIMIT, txn.currency),
            "refunds": txn.refunds.order_by("-created_at", "-id")[:50],
        }
        return TemplateResponse(request, "admin/payments/transaction/refund.html", context)
