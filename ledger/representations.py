"""How the ledger is rendered: the balance, balance transactions and payouts, as the API
shows them (snake_case here; the camelCase renderer translates at the edge) and, for
payouts, as their outbox events carry them."""

from rest_framework import serializers

from core.representations import utc_iso


class BalanceAmountOutput(serializers.Serializer):
    amount = serializers.IntegerField()
    currency = serializers.CharField()


class BalanceOutput(serializers.Serializer):
    """GET /payment/balance. `available` may be negative (refunds, chargebacks or fees beyond
    the available funds: the merchant owes the difference); `reserved` is held for open
    chargebacks."""

    object = serializers.SerializerMethodField()
    livemode = serializers.BooleanField()
    merchant = serializers.CharField()
    available = BalanceAmountOutput(many=True)
    pending = BalanceAmountOutput(many=True)
    reserved = BalanceAmountOutput(many=True)

    def get_object(self, obj) -> str:
        return "balance"


class BalanceTransactionOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    livemode = serializers.BooleanField()
    type = serializers.CharField(source="balance_type")
    amount = serializers.IntegerField()
    fee = serializers.IntegerField()
    net = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.SerializerMethodField()
    available_on = serializers.SerializerMethodField()
    source = serializers.CharField(source="source_id")
    payout = serializers.SerializerMethodField()
    description = serializers.CharField()
    created_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "balance_transaction"

    def get_status(self, obj) -> str:
        """`pending` until a payment's net amount is available; every other movement is
        available at once (ledger.selectors annotates `released`)."""
        return "available" if getattr(obj, "released", True) else "pending"

    def get_available_on(self, obj) -> str:
        return utc_iso(obj.available_on)

    def get_payout(self, obj) -> str | None:
        return obj.payout.public_id if obj.payout_id else None

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)


class PayoutOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    livemode = serializers.BooleanField()
    merchant = serializers.CharField(source="merchant.public_id")
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.CharField()
    description = serializers.CharField()
    automatic = serializers.BooleanField()
    gateway = serializers.CharField()
    gateway_reference = serializers.SerializerMethodField()
    arrival_date = serializers.SerializerMethodField()
    failure_code = serializers.SerializerMethodField()
    failure_message = serializers.SerializerMethodField()
    created_at = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()
    paid_at = serializers.SerializerMethodField()
    failed_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "payout"

    def get_gateway_reference(self, obj) -> str | None:
        return obj.gateway_reference or None

    def get_arrival_date(self, obj) -> str | None:
        return obj.arrival_date.isoformat() if obj.arrival_date else None

    def get_failure_code(self, obj) -> str | None:
        return obj.failure_code or None

    def get_failure_message(self, obj) -> str | None:
        return obj.failure_message or None

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)

    def get_updated_at(self, obj) -> str:
        return utc_iso(obj.updated_at)

    def get_paid_at(self, obj) -> str | None:
        return utc_iso(obj.paid_at)

    def get_failed_at(self, obj) -> str | None:
        return utc_iso(obj.failed_at)
