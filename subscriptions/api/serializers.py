"""Input and output serializers of the subscriptions API (snake_case here; the camelCase
parser and renderer translate at the edge). Outputs are also the outbox event payloads."""

from rest_framework import serializers

from core.api.serializers import (
    CurrencyField,
    InputSerializer,
    MetadataField,
    RawField,
    StatusListMixin,
    StrictIntegerField,
    TokenField,
    utc_iso,
    validate_amount,
)
from subscriptions.models import (
    MAX_TRIAL_DAYS,
    DunningFinalAction,
    Interval,
    InvoiceStatus,
    SubscriptionStatus,
)

# Longest billing interval accepted (3 years), per unit.
MAX_INTERVAL_COUNT = {Interval.DAY: 1095, Interval.WEEK: 156, Interval.MONTH: 36, Interval.YEAR: 3}


# --- inputs ------------------------------------------------------------------------------
class PlanCreateInput(InputSerializer):
    name = serializers.CharField(max_length=200)
    amount = RawField()
    currency = CurrencyField()
    interval = serializers.ChoiceField(choices=Interval.values)
    interval_count = StrictIntegerField(min_value=1, max_value=1095, required=False, default=1)
    trial_days = StrictIntegerField(min_value=0, max_value=MAX_TRIAL_DAYS, required=False, default=0)
    metadata = MetadataField(required=False, default=dict)

    def validate(self, attrs):
        attrs["amount"] = validate_amount(attrs.get("amount"), currency=attrs.get("currency"))
        limit = MAX_INTERVAL_COUNT[attrs["interval"]]
        if attrs["interval_count"] > limit:
            raise serializers.ValidationError(
                {"interval_count": f"intervalCount must be at most {limit} for interval '{attrs['interval']}' (3 years)."}
            )
        return attrs


class PlanListFilters(InputSerializer):
    active = serializers.BooleanField(required=False, allow_null=True, default=None)


class SubscriptionCreateInput(InputSerializer):
    customer = serializers.RegexField(r"^cus_[A-Za-z0-9]+$", max_length=40,
                                      error_messages={"invalid": "Must be a customer id (cus_…)."})
    plan = serializers.RegexField(r"^plan_[A-Za-z0-9]+$", max_length=40, error_messages={"invalid": "Must be a plan id (plan_…)."})
    payment_method = TokenField()
    trial_days = StrictIntegerField(min_value=0, max_value=MAX_TRIAL_DAYS, required=False, allow_null=True, default=None)
    metadata = MetadataField(required=False, default=dict)


class SubscriptionUpdateInput(InputSerializer):
    payment_method = TokenField(required=False)
    cancel_at_period_end = serializers.BooleanField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"payment_method": "Send paymentMethod and/or cancelAtPeriodEnd."})
        return attrs


class SubscriptionCancelInput(InputSerializer):
    at_period_end = serializers.BooleanField(required=False, default=False)


class EmptyInput(InputSerializer):
    pass


class SubscriptionListFilters(StatusListMixin, InputSerializer):
    status = serializers.ListField(child=serializers.ChoiceField(choices=SubscriptionStatus.values), required=False)
    customer = serializers.CharField(max_length=40, required=False)
    plan = serializers.CharField(max_length=40, required=False)


class InvoiceListFilters(StatusListMixin, InputSerializer):
    subscription = serializers.RegexField(r"^sub_[A-Za-z0-9]+$", max_length=40, required=False,
                                          error_messages={"invalid": "Must be a subscription id (sub_…)."})
    status = serializers.ListField(child=serializers.ChoiceField(choices=InvoiceStatus.values), required=False)


class SubscriptionSettingsInput(InputSerializer):
    dunning_final_action = serializers.ChoiceField(choices=DunningFinalAction.values)


# --- outputs -----------------------------------------------------------------------------
class _Timestamps(serializers.Serializer):
    created_at = serializers.SerializerMethodField()

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)


class PlanOutput(_Timestamps):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
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
        from subscriptions.selectors import latest_invoice

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
