"""The one database read of every screening: the rules to evaluate and the merchant's list
items holding any of the payment's values, in one query (UNION ALL), written in SQL.

Why SQL and one query: screening must add at most 2 ms at p99 to create-payment (bench row
7); the ORM's building of these two queries cost several times the queries themselves, and
each round trip counts. What it reads:
- the current active and shadow versions of the merchant's rules (of the mode) and of the
  platform rules, in creation order;
- (list, value) of the merchant's present, unexpired list items holding any of `values`
  (the partial index fraud_list_item_lookup serves it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection
from django.utils import timezone

from fraud.models import ListItem, Rule, RuleVersion
from fraud.screening.rules import EVALUATED_MODES, CompiledRule, compiled_rules

_RULES = (
    "SELECT 'rule', r.id, r.public_id, r.merchant_id, v.id, v.number, v.action, v.mode, v.source"
    " FROM {rule} r JOIN {version} v ON v.id = r.current_version_id"
    " WHERE ((r.merchant_id = %s AND r.livemode = %s) OR r.merchant_id IS NULL) AND v.mode IN (%s, %s)"
)
_LISTED = (
    "SELECT 'list', NULL, i.list, NULL, NULL, NULL, i.value, NULL, NULL FROM {item} i"
    " WHERE i.merchant_id = %s AND i.livemode = %s AND i.removed_at IS NULL"
    " AND (i.expires_at IS NULL OR i.expires_at > %s) AND i.value IN ({values})"
)


def screening_reads(
    *, merchant_id: int, livemode: bool, values: Iterable[str], now: dt.datetime | None = None,
) -> tuple[list[CompiledRule], set[tuple[str, str]]]:
    """(rules to evaluate, (list, value) pairs on the merchant's lists)."""
    values = sorted(set(values))
    sql = _RULES.format(rule=Rule._meta.db_table, version=RuleVersion._meta.db_table)
    params: list = [merchant_id, livemode, *EVALUATED_MODES]
    if values:
        sql += " UNION ALL " + _LISTED.format(item=ListItem._meta.db_table, values=", ".join(["%s"] * len(values)))
        params += [merchant_id, livemode, now or timezone.now(), *values]
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY 1 DESC, 2", params)
        rows = cursor.fetchall()
    rules = [row[2:] for row in rows if row[0] == "rule"]
    listed = {(row[2], row[6]) for row in rows if row[0] == "list"}
    return compiled_rules(rules), listed
