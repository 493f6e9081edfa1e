"""Read queries of reconciliation runs and items (staff only: no merchant scope)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Max, Min, QuerySet

from core.errors import NotFound
from reconciliation.models import UNRESOLVED_STATES, ReconciliationItem, ReconciliationRun


def reconciliation_runs_list(
    *, gateway: str | None = None, date: dt.date | None = None, date_gte: dt.date | None = None,
    date_lte: dt.date | None = None,
) -> QuerySet[ReconciliationRun]:
    query = ReconciliationRun.objects.all()
    if gateway:
        query = query.filter(gateway=gateway)
    if date:
        query = query.filter(settlement_date=date)
    if date_gte:
        query = query.filter(settlement_date__gte=date_gte)
    if date_lte:
        query = query.filter(settlement_date__lte=date_lte)
    return query


def reconciliation_items_list(
    *, gateway: str | None = None, date: dt.date | None = None, categories: list[str] | None = None,
    states: list[str] | None = None, run_public_id: str | None = None,
) -> QuerySet[ReconciliationItem]:
    query = ReconciliationItem.objects.select_related(
        "merchant", "first_run", "last_run", "resolved_by", "requested_by")
    if gateway:
        query = query.filter(gateway=gateway)
    if date:
        query = query.filter(settlement_date=date)
    if categories:
        query = query.filter(category__in=categories)
    if states:
        query = query.filter(state__in=states)
    if run_public_id:
        query = query.filter(last_run__public_id=run_public_id)
    return query


def reconciliation_item_get(*, public_id: str) -> ReconciliationItem:
    item = reconciliation_items_list().filter(public_id=public_id).first()
    if item is None:
        raise NotFound(f"No such reconciliation item: '{public_id[:64]}'", param="id")
    return item


def reconciliation_open_items() -> list[tuple[str, str, int, dt.datetime]]:
    """(gateway, category, open or investigating items, when the oldest was found)."""
    rows = (ReconciliationItem.objects.filter(state__in=UNRESOLVED_STATES).values("gateway", "category")
            .annotate(count=Count("pk"), oldest=Min("created_at")).order_by("gateway", "category"))
    return [(r["gateway"], r["category"], r["count"], r["oldest"]) for r in rows]


def reconciliation_last_successes() -> dict[str, dt.datetime]:
    """When each gateway's last run finished."""
    rows = ReconciliationRun.objects.values("gateway").annotate(last=Max("finished_at")).order_by("gateway")
    return {r["gateway"]: r["last"] for r in rows}
