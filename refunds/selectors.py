"""Read queries of refunds and chargebacks. Scoped to the caller (core.selectors.Scope):
another merchant's id, or one of the other mode, is indistinguishable from a missing one
(UNSCOPED is a staff caller)."""

import datetime as dt

from django.db.models import QuerySet

from core.selectors import Scope, get_by_public_id
from refunds.models import Chargeback, Refund, RefundStatus


def refund_get(*, public_id: str, scope: Scope) -> Refund:
    query = Refund.objects.select_related("transaction", "merchant")
    return get_by_public_id(query, public_id=public_id, label="refund", scope=scope)


def refunds_list(
    *,
    scope: Scope,
    statuses: list[str] | None = None,
    transaction_public_id: str | None = None,
    created_gte: dt.datetime | None = None,
    created_lte: dt.datetime | None = None,
) -> QuerySet[Refund]:
    query = scope.apply(Refund.objects.select_related("transaction", "merchant"))
    if statuses:
        query = query.filter(status__in=statuses)
    if transaction_public_id:
        query = query.filter(transaction__public_id=transaction_public_id)
    if created_gte:
        query = query.filter(created_at__gte=created_gte)
    if created_lte:
        query = query.filter(created_at__lte=created_lte)
    return query


def refunds_failed_since(*, since: dt.datetime | None) -> QuerySet[Refund]:
    """Refunds currently `failed`, that failed at or after `since` (all when None), oldest first."""
    query = Refund.objects.filter(status=RefundStatus.FAILED).select_related("transaction", "merchant")
    if since is not None:
        query = query.filter(failed_at__gte=since)
    return query.order_by("failed_at", "id")


def chargeback_get(*, public_id: str, scope: Scope) -> Chargeback:
    query = Chargeback.objects.select_related("transaction", "merchant").prefetch_related("evidence")
    return get_by_public_id(query, public_id=public_id, label="chargeback", scope=scope)


def chargebacks_list(
    *,
    scope: Scope,
    statuses: list[str] | None = None,
    due_before: dt.datetime | None = None,
    transaction_public_id: str | None = None,
) -> QuerySet[Chargeback]:
    query = scope.apply(Chargeback.objects.select_related("transaction", "merchant").prefetch_related("evidence"))
    if statuses:
        query = query.filter(status__in=statuses)
    if due_before:
        query = query.filter(evidence_due_by__lt=due_before)
    if transaction_public_id:
        query = query.filter(transaction__public_id=transaction_public_id)
    return query
