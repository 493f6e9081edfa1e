"""Input serializers of the subscriptions API (snake_case here; the camelCase parser
translates at the edge). Outputs live in subscriptions.representations."""

from rest_framework import serializers

from core.api.serializers import (
    CurrencyField,
    InputSerializer,
    LivemodeFilterMixin,
    MetadataField,
    RawField,
    StatusListMixin,
    StrictIntegerField,
    TokenField,
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
    # intervalCount is at most 3 years of the interval (validate()).
    schema_constraints = {"anyOf": [
        {"properties": {"interval": {"pattern": f"^{interval}$"}, "intervalCount": {"maximum": limit}}}
        for interval, limit in MAX_INTERVAL_COUNT.items()
    ]}
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


class PlanListFilters(LivemodeFilterMixin, InputSerializer):
    active = serializers.BooleanField(required=False, allow_null=True, default=None)


class SubscriptionCreateInput(InputSerializer):
    customer = serializers.RegexField(r"^cus_[A-Za-z0-9]+$", max_length=40,
                                      error_messages={"invalid": "Must be a customer id (cus_…)."})
    plan = serializers.RegexField(r"^plan_[A-Za-z0-9]+$", max_length=40, error_messages={"invalid": "Must be a plan id (plan_…)."})
    payment_method = TokenField()
    trial_days = StrictIntegerField(min_value=0, max_value=MAX_TRIAL_DAYS, required=False, allow_null=True, default=None)
    metadata = MetadataField(required=False, default=dict)


class SubscriptionUpdateInput(InputSerializer):
    schema_constraints = {"minProperties": 1}  # paymentMethod and/or cancelAtPeriodEnd (validate())

    payment_method = TokenField(required=False)
    cancel_at_period_end = serializers.BooleanField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError({"payment_method": "Send paymentMethod and/or cancelAtPeriodEnd."})
        return attrs


class SubscriptionCancelInput(InputSerializer):
    at_period_end = serializers.BooleanField(required=False, default=False)


class SubscriptionListFilters(LivemodeFilterMixin, StatusListMixin, InputSerializer):
    status = serializers.ListField(child=serializers.ChoiceField(choices=SubscriptionStatus.values), required=False)
    customer = serializers.CharField(max_length=40, required=False)
    plan = serializers.CharField(max_length=40, required=False)


class InvoiceListFilters(LivemodeFilterMixin, StatusListMixin, InputSerializer):
    subscription = serializers.RegexField(r"^sub_[A-Za-z0-9]+$", max_length=40, required=False,
                                          error_messages={"invalid": "Must be a subscription id (sub_…)."})
    status = serializers.ListField(child=serializers.ChoiceField(choices=InvoiceStatus.values), required=False)


class SubscriptionSettingsInput(InputSerializer):
    dunning_final_action = serializers.ChoiceField(choices=DunningFinalAction.values)

