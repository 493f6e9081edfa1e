"""Read queries of refunds and chargebacks. Merchant-scoped: another merchant's id is
indistinguishable from a missing one (`merchant=None` is a staff caller)."""

import datetime as dt

from django.db.models import QuerySet

from accounts.models import Merchant
from core.selectors import get_by_public_id
from refunds.models import Chargeback, Refund, RefundStatus


def refund_get(*, public_id: str, merchant: Merchant | None) -> Refund:
    query = Refund.objects.select_related("transaction", "merchant")
    if merchant is not None:
        query = query.filter(merchant=merchant)
    return get_by_public_id(query, public_id=public_id, label="refund")


def refunds_list(
    *,
    merchant: Merchant | None,
    statuses: list[str] | None = None,
    transaction_public_id: str | None = None,
    created_gte: dt.datetime | None = None,
    created_lte: dt.datetime | None = None,
) -> QuerySet[Refund]:
    query = Refund.objects.select_related("transaction", "merchant")
    if merchant is not None:
        query = query.filter(merchant=merchant)
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


def chargeback_get(*, public_id: str, merchant: Merchant | None) -> Chargeback:
    query = Chargeback.objects.select_related("transaction", "merchant").prefetch_related("evidence")
    if merchant is not None:
        query = query.filter(merchant=merchant)
    return get_by_public_id(query, public_id=public_id, label="chargeback")


def chargebacks_list(
    *,
    merchant: Merchant | None,
    statuses: list[str] | None = None,
    due_before: dt.datetime | None = None,
    transaction_public_id: str | None = None,
) -> QuerySet[Chargeback]:
    query = Chargeback.objects.select_related("transaction", "merchant").prefetch_related("evidence")
    if merchant is not None:
        query = query.filter(merchant=merchant)
    if statuses:
        query = query.filter(status__in=statuses)
    if due_before:
        query = query.filter(evidence_due_by__lt=due_before)
    if transaction_public_id:
        query = query.filter(transaction__public_id=transaction_public_id)
    return query
