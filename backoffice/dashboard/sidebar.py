"""The admin's sidebar (UNFOLD["SIDEBAR"]["navigation"]), grouped by what staff do rather
than by Django app. A link is shown only to whoever may open it: a model's link asks the
model's admin (whose view permission already follows core.permissions), a page's link asks
the capability the page checks. Pages another part of the dashboard adds (audit-log browser,
review queues, dead letters, exports) appear once their URL names exist."""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from core.admin import staff_can
from core.permissions import Capability

Item = dict
# (title, icon, model label) per group, in the order shown.
MODEL_GROUPS: dict[str, list[tuple[str, str, str]]] = {
    "Money": [
        ("Transactions", "payments", "payments.Transaction"),
        ("Refunds", "undo", "refunds.Refund"),
        ("Chargebacks", "gavel", "refunds.Chargeback"),
        ("Payouts", "account_balance", "ledger.Payout"),
        ("Ledger accounts", "account_balance_wallet", "ledger.LedgerAccount"),
        ("Ledger transactions", "receipt_long", "ledger.LedgerTransaction"),
        ("Ledger adjustments", "tune", "ledger.LedgerAdjustment"),
        ("Merchant ledger settings", "settings", "ledger.MerchantLedgerSettings"),
        ("Reconciliation runs", "fact_check", "reconciliation.ReconciliationRun"),
        ("Reconciliation items", "rule", "reconciliation.ReconciliationItem"),
    ],
    "Customers": [
        ("Merchants", "storefront", "accounts.Merchant"),
        ("API keys", "key", "accounts.ApiKey"),
        ("Customers", "person", "payments.Customer"),
        ("Payment methods", "credit_card", "payments.PaymentMethod"),
    ],
    "Subscriptions": [
        ("Plans", "sell", "subscriptions.Plan"),
        ("Subscriptions", "autorenew", "subscriptions.Subscription"),
        ("Invoices", "request_quote", "subscriptions.Invoice"),
        ("Rebill jobs", "event_repeat", "subscriptions.RebillJob"),
        ("Dunning settings", "settings", "subscriptions.SubscriptionSettings"),
    ],
    "Operations": [
        ("Payment attempts", "swap_horiz", "payments.PaymentAttempt"),
        ("Webhook endpoints", "webhook", "webhooks.WebhookEndpoint"),
        ("Webhook deliveries", "send", "webhooks.WebhookDelivery"),
        ("Outbox events", "outbox", "webhooks.OutboxEvent"),
        ("Inbound gateway events", "move_to_inbox", "gateway_events.InboundEvent"),
        ("Runtime switches", "toggle_on", "core.RuntimeSetting"),
        ("Idempotency keys", "fingerprint", "core.IdempotencyRecord"),
        ("Simulator charges", "science", "gateways.SimulatorCharge"),
    ],
    "Compliance": [
        ("Audit entries", "policy", "audit.AuditEntry"),
        ("Audit seals", "verified", "audit.AuditSeal"),
        ("Field history", "history", "auditlog.LogEntry"),
        ("Ledger verifications", "task_alt", "ledger.LedgerVerificationRun"),
        ("Fraud rules", "shield", "fraud.Rule"),
        ("Fraud lists", "block", "fraud.ListItem"),
        ("Fraud decisions", "policy", "fraud.Decision"),
        ("Fraud reviews", "rate_review", "fraud.Review"),
        ("Staff users", "badge", "auth.User"),
        ("Roles", "groups", "auth.Group"),
        ("Staff tokens", "token", "accounts.StaffToken"),
        ("Staff lockouts", "lock", "accounts.StaffLockout"),
    ],
}


def _any_of(*capabilities: Capability) -> Callable:
    return lambda request: any(staff_can(request, capability) for capability in capabilities)


def _model_may_view(model_label: str) -> Callable:
    def may(request) -> bool:
        model_admin = admin.site._registry.get(apps.get_model(model_label))
        return bool(model_admin and model_admin.has_view_permission(request))

    return may


# Pages (URL name, title, icon, who may open them), placed at the top of their group. Who may
# open a page is what the page itself checks (a queue or dead-letter page opens for whoever
# may read one of its sections).
PAGES: dict[str, list[tuple[str, str, str, Callable]]] = {
    "Money": [
        ("admin:dashboard_overview", "Overview", "dashboard", _any_of(Capability.BACKOFFICE_OVERVIEW)),
        ("admin:dashboard_exports", "Exports", "download", _any_of(Capability.TRANSACTION_READ)),
    ],
    "Operations": [
        ("admin:dashboard_gateways", "Gateways", "hub", _any_of(Capability.BACKOFFICE_GATEWAYS)),
        ("admin:dashboard_review_queues", "Review queues", "inbox",
         _any_of(Capability.RECONCILIATION_READ, Capability.BACKOFFICE_REFUNDS, Capability.FRAUD_READ)),
        ("admin:dashboard_dead_letters", "Dead letters", "report",
         _any_of(Capability.BACKOFFICE_REFUNDS, Capability.SUBSCRIPTION_READ, Capability.WEBHOOK_READ,
                 Capability.INBOX_READ)),
    ],
    "Compliance": [
        ("admin:dashboard_audit_log", "Audit log", "manage_search", _model_may_view("audit.AuditEntry")),
    ],
}


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def _model_url(model_label: str) -> str | None:
    model = apps.get_model(model_label)
    if model not in admin.site._registry:
        return None
    return _url(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def sidebar_navigation(request) -> list[dict]:
    groups = []
    for group, models in MODEL_GROUPS.items():
        items: list[Item] = []
        for name, title, icon, permission in PAGES.get(group, []):
            link = _url(name)
            if link:
                items.append({"title": title, "icon": icon, "link": link, "permission": permission})
        for title, icon, label in models:
            link = _model_url(label)
            if link:
                items.append({"title": title, "icon": icon, "link": link, "permission": _model_may_view(label)})
        groups.append({"title": group, "separator": True, "collapsible": True, "items": items})
    return groups
