"""Back-office admin for payments (django-unfold).

Rule: money is read-only here. Rows are created and moved through their state machines
only by services (which lock, call the gateway, audit and queue); the admin shows them and
offers the allowed transitions as actions that call those same services, as a staff actor.
"""

from django.contrib import admin
from unfold.contrib.filters.admin import RangeDateTimeFilter

from core.admin import ReadOnlyModelAdmin
from core.money import format_minor_units
from payments.models import Customer, PaymentAttempt, PaymentMethod


# --- customers ---------------------------------------------------------------------------
@admin.register(Customer)
class CustomerAdmin(ReadOnlyModelAdmin):
    list_display = ["public_id", "merchant", "name", "email", "created_at"]
    list_filter = ["livemode", ("created_at", RangeDateTimeFilter)]
    list_filter_submit = True
    search_fields = ["public_id", "email", "name"]
    list_select_related = ["merchant"]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyModelAdmin):
    list_display = ["public_id", "customer", "merchant", "gateway", "brand", "last4", "created_at"]
    list_filter = ["livemode", "gateway", "brand"]
    search_fields = ["public_id", "customer__public_id", "gateway_token"]
    list_select_related = ["customer", "merchant"]


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyModelAdmin):
    list_display = ["transaction", "number", "operation", "gateway", "outcome", "amount_display", "started_at", "latency_ms"]
    list_filter = ["operation", "outcome", "gateway"]
    search_fields = ["transaction__public_id", "idempotency_key", "gateway_reference"]
    list_select_related = ["transaction"]
    show_full_result_count = False

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: PaymentAttempt) -> str:
        return format_minor_units(obj.amount, obj.transaction.currency)
