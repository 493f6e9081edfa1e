"""How payments objects are rendered: the API's output serializers (snake_case here; the
camelCase renderer translates at the edge) and, through webhooks.payloads, the outbox
event payloads, so a merchant gets the same JSON from both."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.representations import utc_iso
from fraud.screening.representations import RiskOutput, risk_payload
from fraud.screening.selectors import decision_of_transaction


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
    # Fraud screening's decision; null for a payment that was not screened (not created
    # through the API, or screening off).
    risk = serializers.SerializerMethodField()
    livemode = serializers.BooleanField()
    merchant = serializers.CharField(source="merchant.public_id")
    created_at = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "transaction"

    @extend_schema_field(RiskOutput(allow_null=True))
    def get_risk(self, obj):
        decision = decision_of_transaction(obj)
        return risk_payload(decision) if decision is not None else None

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
    livemode = serializers.BooleanField()
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
    livemode = serializers.BooleanField()
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
