"""Input and output serializers of the merchant payments API (snake_case here; the
camelCase parser and renderer translate at the edge)."""

from rest_framework import serializers

from core.api.serializers import (
    CreatedRangeMixin,
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
from core.money import MAX_AMOUNT
from gateways.registry import GATEWAY_CLASSES  # names only: no gateway module is imported
from payments.models import CaptureMethod, TransactionStatus


class TransactionCreateInput(InputSerializer):
    amount = RawField()
    currency = CurrencyField()
    payment_method = TokenField()
    capture_method = serializers.ChoiceField(choices=CaptureMethod.values, default=CaptureMethod.AUTOMATIC)
    customer = serializers.RegexField(r"^cus_[A-Za-z0-9]+$", max_length=40, required=False,
                                      error_messages={"invalid": "Must be a customer id (cus_…)."})
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    metadata = MetadataField(required=False, default=dict)

    def validate(self, attrs):
        attrs["amount"] = validate_amount(attrs.get("amount"), currency=attrs.get("currency"))
        return attrs


class TransactionCaptureInput(InputSerializer):
    amount = StrictIntegerField(min_value=1, max_value=MAX_AMOUNT, required=False)


class TransactionListFilters(StatusListMixin, CreatedRangeMixin, InputSerializer):
    status = serializers.ListField(child=serializers.ChoiceField(choices=TransactionStatus.values), required=False)
    gateway = serializers.ChoiceField(choices=list(GATEWAY_CLASSES), required=False)
    customer = serializers.CharField(max_length=40, required=False)
    merchant = serializers.CharField(max_length=40, required=False)  # staff only


class CustomerSummaryOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    email = serializers.CharField()
    name = serializers.CharField()


class TransactionOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    status = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    amount_captured = serializers.IntegerField()
    amount_refunded = serializers.IntegerField()
    amount_refundable = serializers.SerializerMethodField()
    amount_disputed = serializers.IntegerField()
    disputed = serializers.BooleanField()
    capture_method = serializers.CharField()
    payment_method = serializers.CharField()
    gateway = serializers.CharField()
    gateway_reference = serializers.CharField()
    customer = serializers.SerializerMethodField()
    description = serializers.CharField()
    metadata = serializers.JSONField()
    failure_code = serializers.CharField(allow_null=True)
    failure_message = serializers.CharField(allow_null=True)
    next_action = serializers.JSONField(allow_null=True)
    livemode = serializers.BooleanField()
    merchant = serializers.CharField(source="merchant.public_id")
    created_at = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "transaction"

    def get_amount_refundable(self, obj) -> int:
        # Captured minus refunds succeeded or in flight and funds withdrawn by chargebacks.
        return obj.amount_refundable

    def get_customer(self, obj) -> str | None:
        return obj.customer.public_id if obj.customer_id else None

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)

    def get_updated_at(self, obj) -> str:
        return utc_iso(obj.updated_at)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["failure_code"] = data["failure_code"] or None
        data["failure_message"] = data["failure_message"] or None
        data["gateway_reference"] = data["gateway_reference"] or None
        return data


class PaymentMethodOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    gateway = serializers.CharField()
    token = serializers.CharField(source="gateway_token")
    brand = serializers.CharField()
    last4 = serializers.CharField()
    customer = serializers.CharField(source="customer.public_id")
    created_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "payment_method"

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)


class CustomerOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    email = serializers.CharField()
    name = serializers.CharField()
    metadata = serializers.JSONField()
    created_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "customer"

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)


class CustomerDetailOutput(CustomerOutput):
    payment_methods = PaymentMethodOutput(many=True, source="payment_methods.all")


class CustomerCreateInput(InputSerializer):
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    metadata = MetadataField(required=False, default=dict)


class CustomerListFilters(CreatedRangeMixin, InputSerializer):
    email = serializers.EmailField(required=False)


class PaymentMethodAttachInput(InputSerializer):
    token = TokenField()
    gateway = serializers.ChoiceField(choices=list(GATEWAY_CLASSES), required=False)
    brand = serializers.RegexField(r"^[a-z_]{1,20}$", required=False, allow_blank=True, default="")
    last4 = serializers.RegexField(r"^[0-9]{4}$", required=False, allow_blank=True, default="",
                                   error_messages={"invalid": "last4 must be exactly 4 digits."})
