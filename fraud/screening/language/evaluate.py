"""Evaluating a rule's condition against a payment's signals.

Rules of evaluation:
- A comparison or membership with a missing value (no email, the counters out of reach, no
  score in simplified flow) is false, `!=` and `not in` included: a rule never matches on
  what is not known. `not (…)` negates what its condition gives.
- Text compares without regard to case (`:card_country: = 'us'` matches US).
- Numbers compare exactly (Decimal); metadata values compare as written: a number with a
  number, text with text, and a metadata value of another kind than the literal is false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from fraud.screening.language import ast

# Whether (list name, normalised value) is on one of the merchant's lists.
ListLookup = Callable[[str, object], bool]

_COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _value(operand, signals: Mapping):
    if isinstance(operand, ast.Literal):
        return operand.value
    if isinstance(operand, ast.Attribute):
        return signals.get(operand.name)
    metadata = signals.get("metadata") or {}
    return metadata.get(operand.key)


def _comparable(value):
    """A value as compared: Decimal for numbers (bools stay bools), casefolded text."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(value))
    if isinstance(value, str):
        return value.casefold()
    return None


def _same_kind(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return type(a) is type(b)


def matches(condition: ast.Condition, signals: Mapping, lists: ListLookup) -> bool:
    if isinstance(condition, ast.Or):
        return any(matches(operand, signals, lists) for operand in condition.operands)
    if isinstance(condition, ast.And):
        return all(matches(operand, signals, lists) for operand in condition.operands)
    if isinstance(condition, ast.Not):
        return not matches(condition.operand, signals, lists)
    if isinstance(condition, ast.Truth):
        return _value(condition.operand, signals) is True
    if isinstance(condition, ast.Compare):
        left = _comparable(_value(condition.left, signals))
        right = _comparable(_value(condition.right, signals))
        if left is None or right is None or not _same_kind(left, right):
            return False
        if isinstance(left, bool) and condition.op not in ("=", "!="):
            return False
        return _COMPARE[condition.op](left, right)
    if isinstance(condition, ast.InList):
        value = _value(condition.operand, signals)
        if value is None:
            return False
        return lists(condition.list_name, value) != condition.negated
    if isinstance(condition, ast.InValues):
        value = _comparable(_value(condition.operand, signals))
        if value is None:
            return False
        found = any(_same_kind(value, _comparable(v.value)) and value == _comparable(v.value) for v in condition.values)
        return found != condition.negated
    raise TypeError(f"not a condition: {condition!r}")


def rule_matches(rule: ast.Rule, signals: Mapping, lists: ListLookup) -> bool:
    return matches(rule.condition, signals, lists)
