"""Read queries of fraud screening, narrowed to the caller's Scope (core.selectors): a
merchant sees its own rules, lists and reviews of its key's mode, plus the platform rules
(read only); staff see everything."""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.db.models import Count, Q, QuerySet

from core.errors import NotFound
from core.selectors import Scope, get_by_public_id
from fraud.models import Decision, ListItem, Review, Rule
from fraud.screening.language.attributes import LISTS


def _rules_visible(scope: Scope) -> QuerySet[Rule]:
    query = Rule.objects.select_related("current_version", "merchant")
    if scope.merchant is None:
        return query if scope.livemode is None else query.filter(Q(livemode=scope.livemode) | Q(merchant__isnull=True))
    own = Q(merchant=scope.merchant) & (Q(livemode=scope.livemode) if scope.livemode is not None else Q())
    return query.filter(own | Q(merchant__isnull=True))


def rules_list(*, scope: Scope, mode: str | None = None, platform: bool | None = None) -> QuerySet[Rule]:
    query = _rules_visible(scope)
    if mode:
        query = query.filter(current_version__mode=mode)
    if platform is not None:
        query = query.filter(merchant__isnull=platform)
    return query


def rule_get(*, public_id: str, scope: Scope) -> Rule:
    found = _rules_visible(scope).filter(public_id=public_id).first()
    if found is None:
        raise NotFound(f"No such fraud rule: '{public_id[:64]}'", param="id")
    return found


def list_items(*, scope: Scope, list_name: str) -> QuerySet[ListItem]:
    """The present items of one list (removed ones are history)."""
    return scope.apply(ListItem.objects.select_related("merchant").filter(list=list_name, removed_at__isnull=True))


def list_item_get(*, public_id: str, scope: Scope, list_name: str) -> ListItem:
    query = ListItem.objects.select_related("merchant").filter(list=list_name, removed_at__isnull=True)
    return get_by_public_id(query, public_id=public_id, label="list item", scope=scope)


def list_summaries(*, scope: Scope) -> list[dict]:
    """Every list with how many present items the caller's scope has on it."""
    counts = dict(
        scope.apply(ListItem.objects.filter(removed_at__isnull=True)).values_list("list").annotate(n=Count("id"))
    )
    return [{"name": name, "kind": str(kind), "purpose": name.split("_", 1)[0], "item_count": counts.get(name, 0)}
            for name, kind in sorted(LISTS.items())]


def reviews_list(*, scope: Scope, statuses: list[str] | None = None) -> QuerySet[Review]:
    query = scope.apply(Review.objects.select_related("merchant", "transaction", "decision"))
    if statuses:
        query = query.filter(status__in=statuses)
    return query


def review_get(*, public_id: str, scope: Scope) -> Review:
    query = Review.objects.select_related("merchant", "transaction", "decision")
    return get_by_public_id(query, public_id=public_id, label="review", scope=scope)


# --- the decision of a payment, as its `risk` renders it -----------------------------------------
# Decisions are written once and never changed (a trigger refuses UPDATE), so the ones this
# process just made are kept by transaction id and rendered without reading them back: the
# payment's JSON is rendered twice in its create request (outbox event and response).
_RECENT_SIZE = 2048
_recent: OrderedDict[int, Decision] = OrderedDict()
_recent_lock = threading.Lock()


def remember_decision(decision: Decision) -> None:
    with _recent_lock:
        _recent[decision.transaction_id] = decision
        while len(_recent) > _RECENT_SIZE:
            _recent.popitem(last=False)


def decision_of_transaction(transaction) -> Decision | None:
    """The decision of a payment: from the payment's own cache (select_related), this
    process's recent decisions, or the database; None when it was not screened."""
    relation = type(transaction).fraud_decision.related
    if relation.is_cached(transaction):
        return relation.get_cached_value(transaction)
    with _recent_lock:
        decision = _recent.get(transaction.pk)
    if decision is not None and (decision.merchant_id != transaction.merchant_id
                                 or decision.created_at < transaction.created_at):
        decision = None  # another payment under a reused id (a database wiped meanwhile)
    if decision is None:
        decision = Decision.objects.filter(transaction_id=transaction.pk).first()
    relation.set_cached_value(transaction, decision)
    return decision
