"""Back-office admin for plans, subscriptions, invoices and rebill jobs (django-unfold).

Money is read-only here, as in payments.admin: rows change only through the services,
offered as actions that run as the staff user (so every transition is audited with them).
Only the per-merchant subscription settings are edited in place."""

from django.contrib import admin
from unfold.admin import ModelAdmin
from unfold.decorators import action

from core.admin import ReadOnlyModelAdmin, ReadOnlyTabularInline, staff_can
from core.admin import run_per_row as _run_per_row
from core.admin import staff_actor as _staff_actor
from core.money import format_minor_units
from core.permissions import Capability
from subscriptions.models import Invoice, Plan, RebillCharge, RebillJob, Subscription, SubscriptionSettings
from subscriptions.services.plans import plan_deactivate
from subscriptions.services.scheduling import rebill_dispatch, rebill_job_requeue_dead
from subscriptions.services.subscriptions import subscription_cancel, subscription_pause, subscription_resume


def _amount(obj) -> str:
    return format_minor_units(obj.amount, obj.currency)


@admin.register(Plan)
class PlanAdmin(ReadOnlyModelAdmin):
    list_display = ["public_id", "name", "merchant", "amount_display", "interval", "interval_count", "trial_days", "active"]
    list_filter = ["livemode", "active", "interval"]
    search_fields = ["public_id", "name", "merchant__public_id"]
    actions = ["deactivate"]

    @admin.display(description="amount")
    def amount_display(self, obj):
        return _amount(obj)

    @action(description="Deactivate (no new subscriptions)")
    def deactivate(self, request, queryset):
        _run_per_row(self, request, queryset.values_list("pk", "public_id"),
                     lambda pk: plan_deactivate(plan_id=pk, actor=_staff_actor(request)), "deactivated")


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyModelAdmin):
    list_display = ["public_id", "merchant", "customer", "plan", "status", "current_period_end", "next_billing_at",
                    "cancel_at_period_end", "created_at"]
    list_filter = ["livemode", "status", "cancel_at_period_end", "plan__interval"]
    search_fields = ["public_id", "customer__public_id", "merchant__public_id", "plan__public_id"]
    actions = ["cancel_now", "cancel_at_period_end", "pause", "resume"]

    def _each(self, request, queryset, call, done):
        _run_per_row(self, request, queryset.values_list("pk", "public_id"), call, done)

    @action(description="Cancel now")
    def cancel_now(self, request, queryset):
        self._each(request, queryset, lambda pk: subscription_cancel(subscription_id=pk, at_period_end=False,
                                                                     actor=_staff_actor(request)), "canceled")

    @action(description="Cancel at period end")
    def cancel_at_period_end(self, request, queryset):
        self._each(request, queryset, lambda pk: subscription_cancel(subscription_id=pk, at_period_end=True,
                                                                     actor=_staff_actor(request)), "cancels at period end")

    @action(description="Pause")
    def pause(self, request, queryset):
        self._each(request, queryset, lambda pk: subscription_pause(subscription_id=pk, actor=_staff_actor(request)), "paused")

    @action(description="Resume")
    def resume(self, request, queryset):
        self._each(request, queryset, lambda pk: subscription_resume(subscription_id=pk, actor=_staff_actor(request)), "resumed")


class RebillChargeInline(ReadOnlyTabularInline):
    model = RebillCharge
    fields = ["number", "idempotency_key", "payment_method", "transaction", "outcome", "failure_code", "worker",
              "created_at", "finished_at"]
    show_change_link = False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyModelAdmin):
    list_display = ["public_id", "merchant", "subscription", "amount_display", "status", "period_start", "period_end",
                    "attempt_count", "payment_failures", "next_attempt_at"]
    list_filter = ["livemode", "status"]
    search_fields = ["public_id", "subscription__public_id", "merchant__public_id"]
    inlines = [RebillChargeInline]

    @admin.display(description="amount")
    def amount_display(self, obj):
        return _amount(obj)


@admin.register(RebillJob)
class RebillJobAdmin(ReadOnlyModelAdmin):
    """The dead letter lives here too: filter on status `dead`, then re-queue."""

    list_display = ["public_id", "merchant", "invoice", "queue", "status", "run_at", "lease_owner", "heartbeat_at",
                    "leases", "error_count", "outcome", "last_error"]
    list_filter = ["status", "queue"]
    search_fields = ["public_id", "invoice__public_id", "subscription__public_id", "lease_owner"]
    actions = ["requeue_dead"]

    @action(description="Re-queue dead jobs", permissions=["requeue"])
    def requeue_dead(self, request, queryset):
        _run_per_row(self, request, queryset.values_list("pk", "public_id"),
                     lambda pk: rebill_job_requeue_dead(job_id=pk, actor=_staff_actor(request)), "re-queued")
        rebill_dispatch()

    def has_requeue_permission(self, request, obj=None):
        # The same rule as the dead-letter page's replay (core.permissions).
        return staff_can(request, Capability.REBILL_REQUEUE)


@admin.register(SubscriptionSettings)
class SubscriptionSettingsAdmin(ModelAdmin):
    list_display = ["merchant", "dunning_final_action", "updated_at"]
    fields = ["merchant", "dunning_final_action"]

    def has_delete_permission(self, request, obj=None):
        return False
