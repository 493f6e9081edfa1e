"""How reconciliation runs and items are rendered: the API's output serializers (snake_case
here; the camelCase renderer translates at the edge) and, through `item_document`, the items
`reconcile_payments --format json` lists. Counts and totals are lists of objects, never maps
keyed by category or currency (the renderer would rewrite such keys)."""

from djangorestframework_camel_case.util import camelize
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.representations import utc_iso
from reconciliation.models import Category, ReconciliationItem, ReconciliationRun


class DiffEntryOutput(serializers.Serializer):
    field = serializers.CharField()
    flowpay = serializers.JSONField(allow_null=True)
    gateway = serializers.JSONField(allow_null=True)


class PendingResolutionOutput(serializers.Serializer):
    resolution = serializers.CharField()
    reason = serializers.CharField()
    requested_by = serializers.CharField()
    requested_at = serializers.CharField()


class ReconciliationItemOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    gateway = serializers.CharField()
    date = serializers.DateField(source="settlement_date")
    category = serializers.CharField()
    state = serializers.CharField()
    kind = serializers.CharField()
    local_reference = serializers.SerializerMethodField()
    gateway_reference = serializers.SerializerMethodField()
    gateway_rows = serializers.ListField(source="gateway_row_keys", child=serializers.CharField())
    merchant = serializers.SerializerMethodField()
    flowpay_amount = serializers.IntegerField(allow_null=True)
    flowpay_currency = serializers.SerializerMethodField()
    gateway_amount = serializers.IntegerField(allow_null=True)
    gateway_currency = serializers.SerializerMethodField()
    amount_difference = serializers.IntegerField()
    flowpay_fee = serializers.IntegerField(allow_null=True)
    gateway_fee = serializers.IntegerField(allow_null=True)
    diff = DiffEntryOutput(many=True)
    first_run = serializers.CharField(source="first_run.public_id")
    last_run = serializers.CharField(source="last_run.public_id")
    occurrences = serializers.IntegerField()
    note = serializers.CharField()
    resolution = serializers.SerializerMethodField()
    resolution_reason = serializers.SerializerMethodField()
    resolved_by = serializers.SerializerMethodField()
    resolved_at = serializers.SerializerMethodField()
    auto_cleared = serializers.BooleanField()
    ledger_reference = serializers.SerializerMethodField()
    pending_resolution = serializers.SerializerMethodField()
    created_at = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "reconciliation_item"

    def get_local_reference(self, obj) -> str | None:
        return obj.local_reference or None

    def get_gateway_reference(self, obj) -> str | None:
        return obj.gateway_reference or None

    def get_merchant(self, obj) -> str | None:
        return obj.merchant.public_id if obj.merchant_id else None

    def get_flowpay_currency(self, obj) -> str | None:
        return obj.flowpay_currency or None

    def get_gateway_currency(self, obj) -> str | None:
        return obj.gateway_currency or None

    def get_resolution(self, obj) -> str | None:
        return obj.resolution or None

    def get_resolution_reason(self, obj) -> str | None:
        return obj.resolution_reason or None

    def get_resolved_by(self, obj) -> str | None:
        if obj.resolved_by_id:
            return obj.resolved_by.get_username()
        return "system" if obj.auto_cleared else None

    def get_resolved_at(self, obj) -> str | None:
        return utc_iso(obj.resolved_at)

    def get_ledger_reference(self, obj) -> str | None:
        return obj.ledger_reference or None

    @extend_schema_field(PendingResolutionOutput(allow_null=True))
    def get_pending_resolution(self, obj) -> dict | None:
        if not obj.pending_resolution:
            return None
        return {"resolution": obj.pending_resolution, "reason": obj.pending_reason,
                "requested_by": obj.requested_by.get_username(), "requested_at": utc_iso(obj.requested_at)}

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)

    def get_updated_at(self, obj) -> str:
        return utc_iso(obj.updated_at)


class CategoryCountOutput(serializers.Serializer):
    category = serializers.CharField()
    count = serializers.IntegerField()


class SideTotalOutput(serializers.Serializer):
    count = serializers.IntegerField()
    gross = serializers.IntegerField()
    fee = serializers.IntegerField(allow_null=True, required=False)


class KindTotalOutput(serializers.Serializer):
    kind = serializers.CharField()
    gateway = SideTotalOutput(allow_null=True)
    flowpay = SideTotalOutput(allow_null=True)


class CurrencyTotalOutput(serializers.Serializer):
    currency = serializers.CharField()
    difference = serializers.IntegerField()
    kinds = KindTotalOutput(many=True)


def run_counts(run: ReconciliationRun) -> list[dict]:
    return [{"category": str(c), "count": int(run.counts.get(c, 0))} for c in Category]


def run_totals(totals: dict) -> list[dict]:
    currencies = sorted(set(totals.get("gateway", {})) | set(totals.get("flowpay", {})))
    rows = []
    for currency in currencies:
        gateway, flowpay = totals.get("gateway", {}).get(currency, {}), totals.get("flowpay", {}).get(currency, {})
        kinds = [{"kind": kind, "gateway": gateway.get(kind), "flowpay": flowpay.get(kind)}
                 for kind in sorted(set(gateway) | set(flowpay))]
        rows.append({"currency": currency, "difference": totals.get("difference", {}).get(currency, 0), "kinds": kinds})
    return rows


class ReconciliationRunOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    gateway = serializers.CharField()
    date = serializers.DateField(source="settlement_date")
    attempt = serializers.IntegerField()
    source = serializers.CharField()
    source_name = serializers.SerializerMethodField()
    time_zone = serializers.CharField()
    gateway_rows = serializers.IntegerField()
    local_records = serializers.IntegerField()
    discrepancies = serializers.IntegerField()
    awaiting_settlement = serializers.IntegerField()
    counts = serializers.SerializerMethodField()
    totals = serializers.SerializerMethodField()
    triggered_by = serializers.CharField()
    started_at = serializers.SerializerMethodField()
    finished_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "reconciliation_run"

    def get_source_name(self, obj) -> str | None:
        return obj.source_name or None

    @extend_schema_field(CategoryCountOutput(many=True))
    def get_counts(self, obj) -> list[dict]:
        return run_counts(obj)

    @extend_schema_field(CurrencyTotalOutput(many=True))
    def get_totals(self, obj) -> list[dict]:
        return run_totals(obj.totals)

    def get_started_at(self, obj) -> str:
        return utc_iso(obj.started_at)

    def get_finished_at(self, obj) -> str:
        return utc_iso(obj.finished_at)


def item_document(item: ReconciliationItem) -> dict:
    """An item as the API renders it (camelCase keys), for the runbook command's JSON."""
    return camelize(dict(ReconciliationItemOutput(item).data))
