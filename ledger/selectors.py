"""Read queries of the ledger: balances, balance transactions, payouts, and the totals the
verifier and the metrics read. Merchant reads go through a Scope (core.selectors): another
merchant's objects, or the other mode's, are indistinguishable from missing ones."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import BooleanField, Case, Exists, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from core.selectors import Scope, get_by_public_id
from ledger.models import AccountCode, LedgerAccount, LedgerKind, LedgerTransaction, LedgerVerificationRun, Payout

C = AccountCode


@dataclass(frozen=True)
class CurrencyBalance:
    currency: str
    available: int  # may be negative: the merchant owes FlowPay the difference
    pending: int
    reserved: int


def merchant_balances(*, merchant_id: int, livemode: bool) -> list[CurrencyBalance]:
    """The merchant's funds per currency in one mode: available (its available funds, less
    pending payouts, less what it owes), pending (not available yet), reserved (held for
    open chargebacks)."""
    figures: dict[str, dict[str, int]] = defaultdict(lambda: {"available": 0, "pending": 0, "reserved": 0})
    accounts = LedgerAccount.objects.filter(
        merchant_id=merchant_id, livemode=livemode,
        code__in=[C.MERCHANT_AVAILABLE, C.MERCHANT_RECEIVABLE, C.MERCHANT_PENDING, C.MERCHANT_RESERVE],
    )
    for account in accounts:
        money = figures[account.currency]
        if account.code == C.MERCHANT_AVAILABLE:
            money["available"] += account.spendable
        elif account.code == C.MERCHANT_RECEIVABLE:
            money["available"] -= account.balance
        elif account.code == C.MERCHANT_PENDING:
            money["pending"] += account.balance
        else:
            money["reserved"] += account.balance
    return [CurrencyBalance(currency=currency, **figures[currency]) for currency in sorted(figures)]


def _with_release_status(query: QuerySet[LedgerTransaction], *, now: dt.datetime) -> QuerySet[LedgerTransaction]:
    """`released`: False for a payment whose net amount is still pending (no availability
    transaction yet, or, for a payment that netted nothing, its date not reached)."""
    released = LedgerTransaction.objects.filter(kind=LedgerKind.AVAILABILITY, related_transaction=OuterRef("pk"))
    return query.annotate(released=Case(
        When(~Q(kind=LedgerKind.PAYMENT), then=Value(True)),
        When(Exists(released), then=Value(True)),
        When(Q(net=0, available_on__lte=now), then=Value(True)),
        default=Value(False), output_field=BooleanField(),
    ))


def balance_transactions_list(
    *,
    scope: Scope,
    types: list[str] | None = None,
    currency: str | None = None,
    source: str | None = None,
    payout_public_id: str | None = None,
    created_gte: dt.datetime | None = None,
    created_lte: dt.datetime | None = None,
) -> QuerySet[LedgerTransaction]:
    """What merchants see of the ledger: the transactions that move their funds (internal
    movements, such as funds becoming available, change a payment's status instead)."""
    query = scope.apply(LedgerTransaction.objects.filter(balance_type__isnull=False).select_related("payout"))
    if types:
        query = query.filter(balance_type__in=types)
    if currency:
        query = query.filter(currency=currency)
    if source:
        query = query.filter(source_id=source)
    if payout_public_id:
        query = query.filter(payout__public_id=payout_public_id)
    if created_gte:
        query = query.filter(created_at__gte=created_gte)
    if created_lte:
        query = query.filter(created_at__lte=created_lte)
    return _with_release_status(query, now=timezone.now())


def balance_transaction_get(*, public_id: str, scope: Scope) -> LedgerTransaction:
    query = _with_release_status(
        LedgerTransaction.objects.filter(balance_type__isnull=False).select_related("payout"), now=timezone.now()
    )
    return get_by_public_id(query, public_id=public_id, label="balance transaction", scope=scope)


def payout_get(*, public_id: str, scope: Scope) -> Payout:
    return get_by_public_id(Payout.objects.select_related("merchant"), public_id=public_id, label="payout", scope=scope)


def payouts_list(
    *,
    scope: Scope,
    statuses: list[str] | None = None,
    currency: str | None = None,
    created_gte: dt.datetime | None = None,
    created_lte: dt.datetime | None = None,
) -> QuerySet[Payout]:
    query = scope.apply(Payout.objects.select_related("merchant"))
    if statuses:
        query = query.filter(status__in=statuses)
    if currency:
        query = query.filter(currency=currency)
    if created_gte:
        query = query.filter(created_at__gte=created_gte)
    if created_lte:
        query = query.filter(created_at__lte=created_lte)
    return query


def ledger_last_verification() -> tuple[LedgerVerificationRun | None, LedgerVerificationRun | None]:
    """The latest whole-ledger verification run, and the latest one that found nothing wrong."""
    runs = LedgerVerificationRun.objects.filter(merchant__isnull=True)
    return runs.order_by("-finished_at", "-id").first(), runs.filter(ok=True).order_by("-finished_at", "-id").first()


def payouts_due_for_send(*, now: dt.datetime | None = None) -> QuerySet:
    """Ids of pending payouts whose next attempt is due (their gateway call failed or its
    answer was lost)."""
    now = now or timezone.now()
    return Payout.objects.filter(status="pending", next_attempt_at__lte=now).order_by("next_attempt_at").values_list("pk", flat=True)


def payouts_due_for_follow_up() -> QuerySet:
    """Ids of payouts in transit: their gateway is asked whether they arrived."""
    return Payout.objects.filter(status="in_transit").order_by("in_transit_at").values_list("pk", flat=True)
