"""Back-office admin for payments (django-unfold).

Rule: money is read-only here. Rows are created and moved through their state machines
only by services (which lock, call the gateway, audit and queue); the admin shows them and
offers the allowed transitions as actions that call those same services, as a staff actor.
"""


from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.decorators import action

from audit.actors import Actor
from flowpay import roles
from flowpay.admin import ReadOnlyModelAdmin, ReadOnlyTabularInline
from flowpay.admin import run_per_row as _run_per_row
from flowpay.admin import staff_actor as _staff_actor
from flowpay.errors import FlowPayError
from flowpay.money import format_minor_units
from flowpay.roles import user_roles
from payments.models import (
    ApiKey,
    Customer,
    IdempotencyRecord,
    InboundEvent,
    Merchant,
    PaymentAttempt,
    PaymentMethod,
    SimulatorCharge,
    StaffToken,
    Transaction,
)
from payments.services.credentials import api_key_revoke, staff_token_revoke
from payments.services.inbound import inbound_event_replay
from payments.services.transactions import transaction_cancel, transaction_capture
from refunds.forms import TransactionRefundForm
from refunds.models import Chargeback, Refund, RefundStatus
from refunds.services.refunds import REFUND_ROLES, refund_create, support_refund_limit


# --- merchants and credentials ---------------------------------------------------------
class ApiKeyInline(ReadOnlyTabularInline):
    model = ApiKey
    fields = ["prefix", "environment", "label", "created_at", "last_used_at", "revoked_at"]


@admin.register(Merchant)
class MerchantAdmin(ModelAdmin):
    """Only the name and the active flag are edited here (django-auditlog keeps the field
    history). Merchants and their keys are created by `create_merchant` / the services,
    which show the key's secret once; nothing is deleted (payments and audit refer to it)."""

    list_display = ["name", "public_id", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "public_id"]
    fields = ["public_id", "name", "is_active", "created_at", "updated_at"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    inlines = [ApiKeyInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CredentialAdmin(ReadOnlyModelAdmin):
    # The digest cannot reveal the secret, but no one needs to see it either.
    hidden_fields = ("key_hash",)
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("created_at", RangeDateTimeFilter)]
    list_filter_submit = True
    actions = ["revoke_selected"]

    def has_revoke_permission(self, request):
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.display(boolean=True, description="active")
    def active(self, obj):
        return obj.is_active

    def revoke(self, *, pk: int, actor: Actor) -> None:
        raise NotImplementedError

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        actor = _staff_actor(request)
        rows = queryset.filter(revoked_at__isnull=True).values_list("pk", "prefix")
        _run_per_row(self, request, rows, lambda pk: self.revoke(pk=pk, actor=actor), "revoked")


@admin.register(ApiKey)
class ApiKeyAdmin(CredentialAdmin):
    list_display = ["prefix", "merchant", "environment", "label", "active", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["environment", *CredentialAdmin.list_filter]
    search_fields = ["prefix", "label", "merchant__name", "merchant__public_id"]
    list_select_related = ["merchant"]

    def revoke(self, *, pk: int, actor: Actor) -> None:
        api_key_revoke(api_key_id=pk, actor=actor)


@admin.register(StaffToken)
class StaffTokenAdmin(CredentialAdmin):
    list_display = ["prefix", "user", "label", "active", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "label", "user__username"]
    list_select_related = ["user"]

    def revoke(self, *, pk: int, actor: Actor) -> None:
        staff_token_revoke(staff_token_id=pk, actor=actor)


# --- customers ---------------------------------------------------------------------------
@admin.register(Customer)
class CustomerAdmin(ReadOnlyModelAdmin):
    list_display = ["public_id", "merchant", "name", "email", "created_at"]
    list_filter = [("created_at", RangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["public_id", "email", "name"]
    list_select_related = ["merchant"]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyModelAdmin):
    list_display = ["public_id", "customer", "merchant", "gateway", "brand", "last4", "created_at"]
    list_filter = ["gateway", "brand"]
    search_fields = ["public_id", "customer__public_id", "gateway_token"]
    list_select_related = ["customer", "merchant"]


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
        return super().has_view_permission(request, obj) or bool(user_roles(request.user) & REFUND_ROLES)


class ChargebackInline(ReadOnlyTabularInline):
    model = Chargeback
    fields = ["public_id", "status", "chargeback_reference", "amount", "reason", "evidence_due_by", "created_at"]

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or bool(user_roles(request.user) & REFUND_ROLES)


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyModelAdmin):
    """Fully read-only. Capture and void are offered as actions that call the services, so
    they go through the row lock, the gateway and the audit log like an API call. Support's
    manual refund is the "Refund" button of a transaction's page: a form calling the same
    refund service as the API, as the staff user (FLOWPAY_SUPPORT_REFUND_LIMIT applies)."""

    list_display = ["public_id", "merchant", "amount_display", "status", "gateway", "created_at"]
    list_filter = ["status", "gateway", "capture_method", ("created_at", RangeDateTimeFilter)]
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
        # Support, finance and admin staff reach a payment's page to refund it.
        return super().has_view_permission(request, obj) or self.has_refund_permission(request)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self.has_refund_permission(request)

    def has_refund_permission(self, request, obj=None):
        return bool(user_roles(request.user) & REFUND_ROLES)

    @action(description="Refund", url_path="refund", permissions=["refund"], icon="undo")
    def refund_detail(self, request, object_id):
        """GET: the refund form; POST: refund_create as the staff user, then back to the payment."""
        txn = self.get_object(request, unquote(object_id))
        if txn is None:
            raise Http404("No such transaction.")
        change_url = reverse("admin:payments_transaction_change", args=[txn.pk])
        form = TransactionRefundForm(
            request.POST if request.method == "POST" else None, initial={"amount": txn.amount_refundable or None},
        )
        if request.method == "POST" and form.is_valid():
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
            "change_url": change_url,
            "captured": format_minor_units(txn.amount_captured, txn.currency),
            "refunded": format_minor_units(txn.amount_refunded, txn.currency),
            "refundable": format_minor_units(txn.amount_refundable, txn.currency),
            "limit": format_minor_units(support_refund_limit(), txn.currency),
            "refunds": txn.refunds.order_by("-created_at", "-id")[:50],
        }
        return TemplateResponse(request, "admin/payments/transaction/refund.html", context)


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyModelAdmin):
    list_display = ["transaction", "number", "operation", "gateway", "outcome", "amount_display", "started_at", "latency_ms"]
    list_filter = ["operation", "outcome", "gateway"]
    search_fields = ["transaction__public_id", "idempotency_key", "gateway_reference"]
    list_select_related = ["transaction"]
    show_full_result_count = False

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: PaymentAttempt) -> str:
        return format_minor_units(obj.amount, obj.transaction.currency)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyModelAdmin):
    list_display = ["key", "scope", "method", "path", "status", "response_status", "created_at"]
    list_filter = ["status", "method"]
    search_fields = ["key", "scope", "path"]
    show_full_result_count = False


@admin.register(SimulatorCharge)
class SimulatorChargeAdmin(ReadOnlyModelAdmin):
    """The simulator gateway's own records (what the "PSP" believes), for demos and tests."""

    list_display = ["reference", "flowpay_reference", "status", "amount", "currency", "call_count", "created_at"]
    list_filter = ["status"]
    search_fields = ["reference", "flowpay_reference", "idempotency_key"]


# --- inbound gateway webhooks ----------------------------------------------------------------
INBOX_ROLES = frozenset({roles.OPERATOR, roles.ADMIN})


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
        return super().has_view_permission(request, obj) or bool(user_roles(request.user) & INBOX_ROLES)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or bool(user_roles(request.user) & INBOX_ROLES)

    def has_replay_permission(self, request):
        return bool(user_roles(request.user) & INBOX_ROLES)

    @admin.action(description="Replay selected events (failed, ignored or stalled)", permissions=["replay"])
    def replay_selected(self, request, queryset):
        actor = _staff_actor(request)
        rows = [(pk, f"{gateway} {event_id}") for pk, gateway, event_id in queryset.values_list("pk", "gateway", "event_id")]
        _run_per_row(self, request, rows, lambda pk: inbound_event_replay(inbound_event_id=pk, actor=actor), "queued again")
