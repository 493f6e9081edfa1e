"""The syntax tree of a rule: immutable nodes, compared by what they mean (the column of a
node is kept for error messages and does not take part in equality)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

Value = Decimal | str | bool


class Action(StrEnum):
    """What a matching rule does. Precedence (Radar's): request_3ds is applied and screening
    continues; then allow beats block, which beats review."""

    ALLOW = "allow"
    BLOCK = "block"
    REVIEW = "review"
    REQUEST_3DS = "request_3ds"


@dataclass(frozen=True)
class Attribute:
    name: str  # canonical (aliases resolved by the parser)
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Metadata:
    """`::key::`: the payment's metadata value for `key`."""

    key: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Literal:
    value: Value
    column: int = field(default=0, compare=False)


Operand = Attribute | Metadata | Literal


@dataclass(frozen=True)
class Compare:
    op: str  # = != < <= > >=
    left: Operand
    right: Operand
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class InList:
    operand: Operand
    list_name: str
    negated: bool = False
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class InValues:
    operand: Operand
    values: tuple[Literal, ...]
    negated: bool = False
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Truth:
    """A boolean attribute on its own: `review if :is_new_customer:`."""

    operand: Attribute | Metadata
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Not:
    operand: Condition
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]
    column: int = field(default=0, compare=False)


Condition = Compare | InList | InValues | Truth | Not | And | Or


@dataclass(frozen=True)
class Rule:
    action: Action
    condition: Condition


def walk(node):
    """Every node of a tree, depth first."""
    yield node
    children = ()
    if isinstance(node, Rule):
        children = (node.condition,)
    elif isinstance(node, (And, Or)):
        children = node.operands
    elif isinstance(node, Not):
        children = (node.operand,)
    elif isinstance(node, Compare):
        children = (node.left, node.right)
    elif isinstance(node, (InList, Truth)):
        children = (node.operand,)
    elif isinstance(node, InValues):
        children = (node.operand, *node.values)
    for child in children:
        yield from walk(child)
