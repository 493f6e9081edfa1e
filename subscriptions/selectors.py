"""Read queries of the subscriptions app. Merchant-scoped selectors take the caller's Scope
(core.selectors) and return only its merchant's rows of its mode: another merchant's id, or
one of the other mode, is indistinguishable from a missing one (UNSCOPED is a staff caller
who may see every merchant in both modes)."""

from django.db.models import Count, QuerySet

from accounts.models import Merchant
from core.selectors import Scope, get_by_public_id
from subscriptions.models import REBILL_QUEUES, Invoice, Plan, RebillJob, RebillJobStatus, Subscription, SubscriptionSettings


def plan_get(*, public_id: str, scope: Scope, param: str = "id") -> Plan:
    return get_by_public_id(Plan.objects.all(), public_id=public_id, label="plan", scope=scope, param=param)


def plans_list(*, scope: Scope, active: bool | None = None) -> QuerySet[Plan]:
    query = scope.apply(Plan.objects.all())
    return query if active is None else query.filter(active=active)


def subscription_get(*, public_id: str, scope: Scope) -> Subscription:
    query = Subscription.objects.select_related("plan", "customer")
    return get_by_public_id(query, public_id=public_id, label="subscription", scope=scope)


def subscriptions_list(
    *, scope: Scope, statuses: list[str] | None = None, customer: str | None = None, plan: str | None = None
) -> QuerySet[Subscription]:
    query = scope.apply(Subscription.objects.select_related("plan", "customer"))
    if statuses:
        query = query.filter(status__in=statuses)
    if customer:
        query = query.filter(customer__public_id=customer)
    if plan:
        query = query.filter(plan__public_id=plan)
    return query


def invoice_get(*, public_id: str, scope: Scope) -> Invoice:
    query = Invoice.objects.select_related("subscription", "customer", "transaction")
    return get_by_public_id(query, public_id=public_id, label="invoice", scope=scope)


def invoices_list(
    *, scope: Scope, subscription: str | None = None, statuses: list[str] | None = None
) -> QuerySet[Invoice]:
    query = scope.apply(Invoice.objects.select_related("subscription", "customer", "transaction"))
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
