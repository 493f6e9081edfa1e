"""The dashboard's lists: transactions, refunds, chargebacks, subscriptions, invoices and
payouts, on the apps' own admin pages (read-only money, actions through the services),
extended here with the same filters on every list, search by FlowPay id, gateway
reference or customer email, a CSV export of the whole filtered set, and a timeline of
each row.

The apps register their pages; the back office, which may import every app (none imports
it), registers each again as a subclass of it, so the apps' actions and permissions stay
theirs. Filters use Django admin's lookup names (`status__exact`, `gateway__exact`,
`currency__exact`, `merchant__id__exact`); amount and date ranges also answer the plain
lookups (`amount__gte`, `created_at__lte`), which the overview's links use."""

from django.contrib import admin
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    FieldTextFilter,
    RangeDateTimeFilter,
    RangeNumericFilter,
    RelatedDropdownFilter,
)
from unfold.decorators import action

from backoffice.admin.transactions import TransactionAdmin
from backoffice.dashboard.exports.columns import ExportColumn, money
from backoffice.dashboard.exports.views import export_list
from backoffice.dashboard.filters import ExactTextFilter, gateway_filter
from backoffice.dashboard.timeline import timeline_page
from core.admin import staff_can
from core.permissions import Capability
from ledger.admin import PayoutAdmin
from ledger.models import Payout
from payments.models import Transaction
from refunds.admin import ChargebackAdmin, RefundAdmin
from refunds.models import Chargeback, Refund
from subscriptions.admin import InvoiceAdmin, SubscriptionAdmin
from subscriptions.models import Invoice, Subscription


def _column(header: str, path: str | None = None) -> ExportColumn:
    return ExportColumn(header=header, path=path or header)


class DashboardList:
    """What every dashboard list adds to its app's admin page. A subclass names the
    capability that reads it (`read_capability`, on top of the app's own access rules) and
    its CSV columns (`export_columns`)."""

    read_capability: Capability
    export_columns: list[ExportColumn] = []
    list_filter_submit = True  # the range filters need a submit button
    list_before_template = "admin/dashboard/list_export.html"
    actions_row = ["timeline"]

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or staff_can(request, self.read_capability)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or staff_can(request, self.read_capability)

    def get_custom_urls(self):
        opts = self.model._meta
        return (("export-csv/", f"{opts.app_label}_{opts.model_name}_export_csv", export_list),)

    @action(description="Timeline", url_path="timeline", icon="timeline")
    def timeline(self, request, object_id):
        return timeline_page(request, model_admin=self, object_id=object_id)


def _reregister(model, admin_class) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, admin_class)


class TransactionList(DashboardList, TransactionAdmin):
    read_capability = Capability.TRANSACTION_READ
    list_filter = [
        ("status", ChoicesDropdownFilter), gateway_filter(), ("currency", ExactTextFilter),
        ("merchant", RelatedDropdownFilter), ("customer__email", FieldTextFilter), ("amount", RangeNumericFilter),
        ("created_at", RangeDateTimeFilter), "livemode", "capture_method",
    ]
    search_fields = ["public_id", "gateway_reference", "customer__email"]
    list_display = ["public_id", "merchant", "amount_display", "status", "gateway", "customer_email", "created_at"]
    list_select_related = ["merchant", "customer"]
    actions_detail = [*TransactionAdmin.actions_detail, "timeline"]
    export_columns = [
        _column("id", "public_id"), _column("merchant", "merchant__public_id"), _column("customer_email", "customer__email"),
        _column("status"), _column("gateway"), _column("gateway_reference"), money("amount", "amount"),
        money("amount_captured", "amount_captured"), money("amount_refunded", "amount_refunded"), _column("currency"),
        _column("created_at"), _column("finalized_at"),
    ]

    @admin.display(description="customer email", ordering="customer__email")
    def customer_email(self, obj: Transaction) -> str:
        return obj.customer.email if obj.customer else ""


class RefundList(DashboardList, RefundAdmin):
    read_capability = Capability.BACKOFFICE_REFUNDS
    list_filter = [
        ("status", ChoicesDropdownFilter), gateway_filter(), ("currency", ExactTextFilter),
        ("merchant", RelatedDropdownFilter), ("transaction__customer__email", FieldTextFilter),
        ("amount", RangeNumericFilter), ("created_at", RangeDateTimeFilter), "livemode", "approval_required",
    ]
    search_fields = ["public_id", "transaction__public_id", "gateway_reference", "transaction__customer__email"]
    actions_detail = [*RefundAdmin.actions_detail, "timeline"]
    export_columns = [
        _column("id", "public_id"), _column("transaction", "transaction__public_id"),
        _column("merchant", "merchant__public_id"), _column("customer_email", "transaction__customer__email"),
        _column("status"), _column("gateway"), _column("gateway_reference"), money("amount", "amount"), _column("currency"),
        _column("reason"), _column("created_at"), _column("succeeded_at"),
    ]


class ChargebackList(DashboardList, ChargebackAdmin):
    read_capability = Capability.BACKOFFICE_REFUNDS
    list_filter = [
        ("status", ChoicesDropdownFilter), gateway_filter(), ("currency", ExactTextFilter),
        ("merchant", RelatedDropdownFilter), ("transaction__customer__email", FieldTextFilter),
        ("amount", RangeNumericFilter), ("evidence_due_by", RangeDateTimeFilter), ("created_at", RangeDateTimeFilter),
        "livemode",
    ]
    search_fields = ["public_id", "chargeback_reference", "transaction__public_id", "gateway_reference",
                     "transaction__customer__email"]
    actions_detail = [*ChargebackAdmin.actions_detail, "timeline"]
    export_columns = [
        _column("id", "public_id"), _column("transaction", "transaction__public_id"),
        _column("merchant", "merchant__public_id"), _column("chargeback_reference"), _column("status"), _column("gateway"),
        money("amount", "amount"), _column("currency"), _column("evidence_due_by"), _column("created_at"),
    ]


class SubscriptionList(DashboardList, SubscriptionAdmin):
    read_capability = Capability.SUBSCRIPTION_READ
    list_filter = [
        ("status", ChoicesDropdownFilter), ("plan__currency", ExactTextFilter), ("merchant", RelatedDropdownFilter),
        ("customer__email", FieldTextFilter), ("plan__amount", RangeNumericFilter), ("created_at", RangeDateTimeFilter),
        "livemode", "cancel_at_period_end", "plan__interval",
    ]
    search_fields = ["public_id", "customer__public_id", "customer__email", "merchant__public_id", "plan__public_id"]
    list_select_related = ["merchant", "customer", "plan"]
    show_full_result_count = False
    export_columns = [
        _column("id", "public_id"), _column("merchant", "merchant__public_id"), _column("customer_email", "customer__email"),
        _column("plan", "plan__public_id"), _column("status"), money("plan_amount", "plan__amount", "plan__currency"),
        _column("currency", "plan__currency"), _column("current_period_end"), _column("created_at"),
    ]


class InvoiceList(DashboardList, InvoiceAdmin):
    read_capability = Capability.SUBSCRIPTION_READ
    list_filter = [
        ("status", ChoicesDropdownFilter), ("currency", ExactTextFilter), ("merchant", RelatedDropdownFilter),
        ("customer__email", FieldTextFilter), ("amount", RangeNumericFilter), ("created_at", RangeDateTimeFilter),
        "livemode",
    ]
    search_fields = ["public_id", "subscription__public_id", "merchant__public_id", "customer__email"]
    list_select_related = ["merchant", "subscription"]
    show_full_result_count = False
    export_columns = [
        _column("id", "public_id"), _column("merchant", "merchant__public_id"),
        _column("subscription", "subscription__public_id"), _column("customer_email", "customer__email"),
        _column("status"), money("amount", "amount"), _column("currency"), _column("period_start"),
        _column("period_end"), _column("paid_at"), _column("created_at"),
    ]


class PayoutList(DashboardList, PayoutAdmin):
    read_capability = Capability.LEDGER_READ
    list_filter = [
        ("status", ChoicesDropdownFilter), gateway_filter(), ("currency", ExactTextFilter),
        ("merchant", RelatedDropdownFilter), ("amount", RangeNumericFilter), ("created_at", RangeDateTimeFilter),
        "livemode", "automatic",
    ]
    search_fields = ["public_id", "gateway_reference", "merchant__public_id"]
    export_columns = [
        _column("id", "public_id"), _column("merchant", "merchant__public_id"), _column("status"), _column("gateway"),
        _column("gateway_reference"), money("amount", "amount"), _column("currency"), _column("arrival_date"),
        _column("created_at"), _column("paid_at"),
    ]


DASHBOARD_LISTS = {
    Transaction: TransactionList, Refund: RefundList, Chargeback: ChargebackList,
    Subscription: SubscriptionList, Invoice: InvoiceList, Payout: PayoutList,
}
for _model, _admin_class in DASHBOARD_LISTS.items():
    _reregister(_model, _admin_class)
