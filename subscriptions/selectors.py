"""Read queries of the subscriptions app. Merchant-scoped selectors return only that
merchant's rows: another merchant's id is indistinguishable from a missing one
(`merchant=None` is a staff caller who may see every merchant)."""

from django.db.models import Count, QuerySet

from accounts.models import Merchant
from core.selectors import get_by_public_id
from subscriptions.models import REBILL_QUEUES, Invoice, Plan, RebillJob, RebillJobStatus, Subscription, SubscriptionSettings


def _scoped(query: QuerySet, merchant: Merchant | None) -> QuerySet:
    return query if merchant is None else query.filter(merchant=merchant)


def plan_get(*, public_id: str, merchant: Merchant | None) -> Plan:
    return get_by_public_id(_scoped(Plan.objects.all(), merchant), public_id=public_id, label="plan")


def plans_list(*, merchant: Merchant | None, active: bool | None = None) -> QuerySet[Plan]:
    query = _scoped(Plan.objects.all(), merchant)
    return query if active is None else query.filter(active=active)


def subscription_get(*, public_id: str, merchant: Merchant | None) -> Subscription:
    query = _scoped(Subscription.objects.select_related("plan", "customer"), merchant)
    return get_by_public_id(query, public_id=public_id, label="subscription")


def subscriptions_list(
    *, merchant: Merchant | None, statuses: list[str] | None = None, customer: str | None = None, plan: str | None = None
) -> QuerySet[Subscription]:
    query = _scoped(Subscription.objects.select_related("plan", "customer"), merchant)
    if statuses:
        query = query.filter(status__in=statuses)
    if customer:
        query = query.filter(customer__public_id=customer)
    if plan:
        query = query.filter(plan__public_id=plan)
    return query


def invoice_get(*, public_id: str, merchant: Merchant | None) -> Invoice:
    query = _scoped(Invoice.objects.select_related("subscription", "customer", "transaction"), merchant)
    return get_by_public_id(query, public_id=public_id, label="invoice")


def invoices_list(
    *, merchant: Merchant | None, subscription: str | None = None, statuses: list[str] | None = None
) -> QuerySet[Invoice]:
    query = _scoped(Invoice.objects.select_related("subscription", "customer", "transaction"), merchant)
    if subscription:
        query = query.filter(subscription__public_id=subscription)
    if statuses:
        query = query.filter(status__in=statuses)
    return query


def latest_invoice(subscription: Subscription) -> Invoice | None:
    return subscription.invoices.select_related("transaction").order_by("-period_start", "-id").first()


def rebill_jobs_dead() -> QuerySet[RebillJob]:
    return (
        RebillJob.objects.filter(status=RebillJobStatus.DEAD)
        .select_related("merchant", "subscription", "invoice")
        .order_by("dead_at", "id")
    )


def rebill_queue_depths() -> dict[str, int]:
    """Queued rebill jobs per queue (every queue listed, 0 when empty)."""
    depths = dict.fromkeys(REBILL_QUEUES, 0)
    rows = RebillJob.objects.filter(status=RebillJobStatus.QUEUED).order_by().values("queue").annotate(n=Count("id"))
    for row in rows:
        depths[row["queue"]] = row["n"]
    return depths


def subscription_settings_get(*, merchant: Merchant) -> SubscriptionSettings:
    """The merchant's settings (an unsaved row with the defaults when never set)."""
    return SubscriptionSettings.objects.filter(merchant=merchant).first() or SubscriptionSettings(merchant=merchant)
