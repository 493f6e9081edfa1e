"""Input serializers of the reconciliation API (snake_case here; the camelCase parser
translates at the edge). Outputs live in reconciliation.representations."""

from rest_framework import serializers

from core.api.serializers import InputSerializer
from reconciliation.models import DISCREPANCY_CATEGORIES, ItemState, Resolution
from reconciliation.services.items import REASON_MAX_LENGTH


class ListOfChoices(serializers.ListField):
    """A filter that may be repeated (?state=a&state=b) or comma-separated (?state=a,b)."""

    def to_internal_value(self, data):
        items = data if isinstance(data, list) else [data]
        values = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
        return super().to_internal_value(values)


class RunListFilters(InputSerializer):
    gateway = serializers.CharField(max_length=20, required=False)
    date = serializers.DateField(required=False)
    date_gte = serializers.DateField(required=False)
    date_lte = serializers.DateField(required=False)

    def validate(self, attrs):
        if attrs.get("date_gte") and attrs.get("date_lte") and attrs["date_gte"] > attrs["date_lte"]:
            raise serializers.ValidationError({"date_gte": "dateGte must not be after dateLte."})
        return attrs


class ItemListFilters(InputSerializer):
    gateway = serializers.CharField(max_length=20, required=False)
    date = serializers.DateField(required=False)
    category = ListOfChoices(child=serializers.ChoiceField(choices=[str(c) for c in DISCREPANCY_CATEGORIES]), required=False)
    state = ListOfChoices(child=serializers.ChoiceField(choices=ItemState.values), required=False)
    run = serializers.CharField(max_length=40, required=False)


class TextField(serializers.CharField):
    """A reason, stored as written (not trimmed)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("max_length", REASON_MAX_LENGTH)
        super().__init__(**kwargs)


class ItemResolveInput(InputSerializer):
    resolution = serializers.ChoiceField(choices=Resolution.values)
    reason = TextField()
    merchant = serializers.CharField(max_length=40, required=False)  # create_local_record: whose payment it is


class ItemInvestigateInput(InputSerializer):
    note = TextField(required=False, allow_blank=True, default="")


class ItemRejectInput(InputSerializer):
    reason = TextField()
