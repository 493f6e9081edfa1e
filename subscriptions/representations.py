"""How plans, subscriptions and invoices are rendered: the API's output serializers
(snake_case here; the camelCase renderer translates at the edge) and, through
webhooks.payloads, the outbox event payloads, so a merchant gets the same JSON from both."""

from rest_framework import serializers

from core.representations import utc_iso
from subscriptions.models import InvoiceStatus
from subscriptions.selectors import latest_invoice


class _Timestamps(serializers.Serializer):
    created_at = serializers.SerializerMethodField()

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)


class PlanOutput(_Timestamps):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    livemode = serializers.BooleanField()
    name = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    interval = serializers.CharField()
    interval_count = serializers.IntegerField()
    trial_days = serializers.IntegerField()
    active = serializers.BooleanField()
    metadata = serializers.JSONField()
    merchant = serializers.CharField(source="merchant.public_id")

    def get_object(self, obj) -> str:
        return "plan"


class InvoiceOutput(_Timestamps):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    livemode = serializers.BooleanField()
    status = serializers.CharField()
    subscription = serializers.CharField(source="subscription.public_id")
    customer = serializers.CharField(source="customer.public_id")
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    period_start = serializers.SerializerMethodField()
    period_end = serializers.SerializerMethodField()
    attempt_count = serializers.IntegerField()
    payment_failures = serializers.IntegerField()
    next_attempt_at = serializers.SerializerMethodField()
    last_failure_code = serializers.SerializerMethodField()
    transaction = serializers.SerializerMethodField()
    paid_at = serializers.SerializerMethodField()
    voided_at = serializers.SerializerMethodField()
    marked_uncollectible_at = serializers.SerializerMethodField()
    merchant = serializers.CharField(source="merchant.public_id")

    def get_object(self, obj) -> str:
        return "invoice"

    def get_period_start(self, obj) -> str:
        return utc_iso(obj.period_start)

    def get_period_end(self, obj) -> str:
        return utc_iso(obj.period_end)

    def get_next_attempt_at(self, obj) -> str | None:
        return utc_iso(obj.next_attempt_at) if obj.status == InvoiceStatus.OPEN else None

    def get_last_failure_code(self, obj) -> str | None:
        return obj.last_failure_code or None

    def get_transaction(self, obj) -> str | None:
        return obj.transaction.public_id if obj.transaction_id else None

    def get_paid_at(self, obj) -> str | None:
        return utc_iso(obj.paid_at)

    def get_voided_at(self, obj) -> str | None:
        return utc_iso(obj.voided_at)

    def get_marked_uncollectible_at(self, obj) -> str | None:
        return utc_iso(obj.marked_uncollectible_at)


class SubscriptionOutput(_Timestamps):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    status = serializers.CharField()
    customer = serializers.CharField(source="customer.public_id")
    plan = PlanOutput()
    payment_method = serializers.CharField()
    current_period_start = serializers.SerializerMethodField()
    current_period_end = serializers.SerializerMethodField()
    next_billing_at = serializers.SerializerMethodField()
    billing_anchor = serializers.SerializerMethodField()
    trial_start = serializers.SerializerMethodField()
    trial_end = serializers.SerializerMethodField()
    cancel_at_period_end = serializers.BooleanField()
    canceled_at = serializers.SerializerMethodField()
    ended_at = serializers.SerializerMethodField()
    paused_at = serializers.SerializerMethodField()
    latest_invoice = serializers.SerializerMethodField()
    metadata = serializers.JSONField()
    livemode = serializers.BooleanField()
    merchant = serializers.CharField(source="merchant.public_id")

    def get_object(self, obj) -> str:
        return "subscription"

    def get_current_period_start(self, obj) -> str:
        return utc_iso(obj.current_period_start)

    def get_current_period_end(self, obj) -> str:
        return utc_iso(obj.current_period_end)

    def get_next_billing_at(self, obj) -> str | None:
        return utc_iso(obj.next_billing_at)

    def get_billing_anchor(self, obj) -> str:
        return utc_iso(obj.billing_anchor)

    def get_trial_start(self, obj) -> str | None:
        return utc_iso(obj.trial_start)

    def get_trial_end(self, obj) -> str | None:
        return utc_iso(obj.trial_end)

    def get_canceled_at(self, obj) -> str | None:
        return utc_iso(obj.canceled_at)

    def get_ended_at(self, obj) -> str | None:
        return utc_iso(obj.ended_at)

    def get_paused_at(self, obj) -> str | None:
        return utc_iso(obj.paused_at)

    def get_latest_invoice(self, obj) -> dict | None:
        invoice = latest_invoice(obj)
        if invoice is None:
            return None
        return {
            "id": invoice.public_id, "status": invoice.status, "amount": invoice.amount, "currency": invoice.currency,
            "attempt_count": invoice.attempt_count, "last_failure_code": invoice.last_failure_code or None,
            "next_attempt_at": utc_iso(invoice.next_attempt_at) if invoice.status == InvoiceStatus.OPEN else None,
            "transaction": invoice.transaction.public_id if invoice.transaction_id else None,
        }


class SubscriptionSettingsOutput(serializers.Serializer):
    object = serializers.SerializerMethodField()
    dunning_final_action = serializers.CharField()

    def get_object(self, obj) -> str:
        return "subscription_settings"
