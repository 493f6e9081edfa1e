"""Input serializers of the balance and payouts API (snake_case here; the camelCase parser
translates at the edge). Outputs live in ledger.representations."""

from rest_framework import serializers

from core.api.serializers import (
    CreatedRangeMixin,
    CurrencyField,
    InputSerializer,
    LivemodeFilterMixin,
    StatusListMixin,
    StrictIntegerField,
)
from core.money import MAX_AMOUNT
from ledger.models import BalanceType, PayoutStatus

DESCRIPTION_MAX_LENGTH = 500


class BalanceFilters(InputSerializer):
    # Staff only (an API key sees its own merchant in its own mode): whose balance, in which mode.
    merchant = serializers.CharField(max_length=40, required=False)
    livemode = serializers.BooleanField(required=False, default=False)


class TypeListMixin:
    """`type` may be repeated (?type=a&type=b) or comma-separated (?type=a,b)."""

    def to_internal_value(self, data):
        if "type" in data:
            raw = data["type"]
            items = raw if isinstance(raw, list) else str(raw).split(",")
            data = {**data, "type": [item.strip() for item in items if item.strip()]}
        return super().to_internal_value(data)


class BalanceTransactionListFilters(TypeListMixin, LivemodeFilterMixin, CreatedRangeMixin, InputSerializer):
    type = serializers.ListField(child=serializers.ChoiceField(choices=BalanceType.values), required=False)
    currency = CurrencyField(required=False)
    source = serializers.CharField(max_length=64, required=False)  # txn_…, re_…, cb_…, po_…, adj_…
    payout = serializers.CharField(max_length=40, required=False)
    merchant = serializers.CharField(max_length=40, required=False)  # staff only


class PayoutCreateInput(InputSerializer):
    amount = StrictIntegerField(min_value=1, max_value=MAX_AMOUNT)
    currency = CurrencyField()
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True, default="")


class PayoutListFilters(LivemodeFilterMixin, StatusListMixin, CreatedRangeMixin, InputSerializer):
    status = serializers.ListField(child=serializers.ChoiceField(choices=PayoutStatus.values), required=False)
    currency = CurrencyField(required=False)
    merchant = serializers.CharField(max_length=40, required=False)  # staff only
