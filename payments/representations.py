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


def transaction_representation(txn) -> dict:
    """A transaction as the API renders it: what TransactionOutput's declared fields give
    (tests/payments/test_representations.py holds the two equal), built directly because
    the fields' machinery costs more than the rendering on the create path. Rendered once
    per change and used for the response, the outbox payload and the idempotency record."""
    return {
        "id": str(txn.public_id),
        "object": "transaction",
        "status": str(txn.status),
        "amount": int(txn.amount),
        "currency": str(txn.currency),
        "amount_captured": int(txn.amount_captured),
        "amount_refunded": int(txn.amount_refunded),
        # Captured minus refunds succeeded or in flight and funds withdrawn by chargebacks.
        "amount_refundable": txn.amount_refundable,
        "amount_disputed": int(txn.amount_disputed),
        "disputed": bool(txn.disputed),
        "capture_method": str(txn.capture_method),
        "payment_method": str(txn.payment_method),
        "gateway": str(txn.gateway),
        "gateway_reference": str(txn.gateway_reference) if txn.gateway_reference else None,
        "customer": txn.customer.public_id if txn.customer_id else None,
        "description": str(txn.description),
        "metadata": txn.metadata,
        "failure_code": str(txn.failure_code) if txn.failure_code else None,
        "failure_message": str(txn.failure_message) if txn.failure_message else None,
        "next_action": txn.next_action,
        "risk": _risk(txn),
        "livemode": bool(txn.livemode),
        "merchant": str(txn.merchant.public_id),
        "created_at": utc_iso(txn.created_at),
        "updated_at": utc_iso(txn.updated_at),
    }


def _risk(txn) -> dict | None:
    # Screening's decision, cached on the payment (or in this process) when it was just made.
    decision = decision_of_transaction(txn)
    return risk_payload(decision) if decision is not None else None


# The declared fields are the OpenAPI schema's; the rendering is transaction_representation's.
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
        return _risk(obj)

    def get_amount_refundable(self, obj) -> int:
        return obj.amount_refundable

    def get_customer(self, obj) -> str | None:
        return obj.customer.public_id if obj.customer_id else None

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)

    def get_updated_at(self, obj) -> str:
        return utc_iso(obj.updated_at)

    def to_representation(self, instance):
        return transaction_representation(instance)


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
