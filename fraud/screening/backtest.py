"""Testing a rule before saving it: evaluate it against the decisions of the last N days
(the signals each payment was screened with) and the lists as they are now.

Rules: the rule is parsed and checked like any rule (400 rule_invalid with the column);
only screened payments are evaluated (a decision holds their signals); at most MAX_DAYS
back and FLOWPAY_FRAUD_BACKTEST_MAX_PAYMENTS payments, the newest, are read (`truncated`
says so); nothing is written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from core.representations import utc_iso
from core.selectors import Scope
from fraud.models import Decision
from fraud.screening.language import parse_rule, rule_matches
from fraud.screening.lists import candidate_values, list_lookup, listed_values

# The longest period a test reads (decisions are kept; the test's cost grows with them),
# and the most matches it lists.
MAX_DAYS = 90
MAX_MATCHES = 100


@dataclass
class BacktestResult:
    rule: str
    action: str
    days: int
    evaluated: int = 0
    matched: int = 0
    truncated: bool = False
    matches: list[dict] = field(default_factory=list)


def rule_backtest(*, scope: Scope, source: str, days: int, limit: int = 100) -> BacktestResult:
    tree = parse_rule(source)
    since = timezone.now() - dt.timedelta(days=days)
    cap = settings.FLOWPAY_FRAUD_BACKTEST_MAX_PAYMENTS
    rows = list(
        scope.apply(Decision.objects.filter(created_at__gte=since))
        .order_by("-created_at", "-id")
        .values_list("merchant_id", "livemode", "signals", "outcome", "created_at", "transaction__public_id")[: cap + 1]
    )
    result = BacktestResult(rule=source.strip(), action=str(tree.action), days=days, truncated=len(rows) > cap)
    rows = rows[:cap]
    lookups = _lookups(rows)
    for merchant_id, livemode, signals, outcome, created_at, transaction in rows:
        result.evaluated += 1
        if rule_matches(tree, signals, lookups[(merchant_id, livemode)]):
            result.matched += 1
            if len(result.matches) < limit:
                result.matches.append({"transaction": transaction, "amount": signals.get("amount"),
                                       "currency": signals.get("currency"), "decision": outcome,
                                       "created_at": utc_iso(created_at)})
    return result


def _lookups(rows) -> dict:
    """One list look-up per (merchant, mode) of the rows, for all their values at once."""
    values: dict[tuple[int, bool], set[str]] = {}
    for merchant_id, livemode, signals, *_ in rows:
        values.setdefault((merchant_id, livemode), set()).update(candidate_values(signals))
    return {
        key: list_lookup(listed_values(merchant_id=key[0], livemode=key[1], values=found))
        for key, found in values.items()
    }
