"""Admin for the simulator gateway's own records."""

from django.contrib import admin

from core.admin import ReadOnlyModelAdmin
from gateways.models import SimulatorCharge


@admin.register(SimulatorCharge)
class SimulatorChargeAdmin(ReadOnlyModelAdmin):
    """The simulator gateway's own records (what the "PSP" believes), for demos and tests."""

    list_display = ["reference", "flowpay_reference", "status", "amount", "currency", "call_count", "created_at"]
    list_filter = ["status"]
    search_fields = ["reference", "flowpay_reference", "idempotency_key"]
