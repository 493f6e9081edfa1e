"""The rules language, parsed by lark (LALR): `ACTION if CONDITION`, Radar's syntax.

    rule       := action "if" condition          action: allow | block | review | request_3ds
    condition  := condition "or" condition | condition "and" condition | "not" condition
                | "(" condition ")" | operand op operand | operand ["not"] "in" @list
                | operand ["not"] "in" "(" literal, … ")" | boolean-attribute
    operand    := :attribute: | ::metadata_key:: | 'text' | "text" | 123 | 4.5 | true | false
    op         := = | != | < | <= | > | >=

Keywords are read in any case (`Block if …`); `and` binds tighter than `or`. A rule is
checked once parsed: every attribute and list must exist, `@list` membership must test an
attribute of the list's kind (an email against an email list), compared values must be of
the attribute's kind, and < <= > >= take numbers. Every error says the column (from 1)
where it is, and a rule with an error is never saved (fraud.screening.rules).
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from core.errors import ErrorCode, InvalidRequest
from fraud.screening.language import ast
from fraud.screening.language.attributes import ALIASES, ATTRIBUTES, LISTS, Kind, attribute_named

MAX_RULE_LENGTH = 1000

GRAMMAR = r"""
start: ACTION _IF expr

?expr: and_expr
     | expr _OR and_expr                 -> or_
?and_expr: not_expr
     | and_expr _AND not_expr            -> and_
?not_expr: _NOT not_expr                 -> not_
     | atom
?atom: operand COMPARATOR operand        -> compare
     | operand _IN list_ref              -> in_list
     | operand _NOT _IN list_ref         -> not_in_list
     | operand _IN _LPAR literals _RPAR  -> in_values
     | operand _NOT _IN _LPAR literals _RPAR -> not_in_values
     | _LPAR expr _RPAR
     | operand                           -> truth
literals: literal (_COMMA literal)*
?operand: ATTRIBUTE                      -> attribute
     | METADATA                          -> metadata
     | literal
literal: NUMBER                          -> number
     | STRING                            -> string
     | TRUE                              -> true
     | FALSE                             -> false
list_ref: LIST

ACTION.2: /(request_3ds|allow|block|review)(?![A-Za-z0-9_])/i
_IF.2: /if(?![A-Za-z0-9_])/i
_AND.2: /and(?![A-Za-z0-9_])/i
_OR.2: /or(?![A-Za-z0-9_])/i
_NOT.2: /not(?![A-Za-z0-9_])/i
_IN.2: /in(?![A-Za-z0-9_])/i
TRUE.2: /true(?![A-Za-z0-9_])/i
FALSE.2: /false(?![A-Za-z0-9_])/i
METADATA: /::[A-Za-z0-9_.\-]{1,40}::/
ATTRIBUTE: /:[A-Za-z0-9_]+:/
LIST: /@[A-Za-z0-9_]+/
COMPARATOR: "!=" | "<=" | ">=" | "=" | "<" | ">"
NUMBER: /-?[0-9]+(\.[0-9]+)?(?![A-Za-z0-9_])/
STRING: /'(?:[^'\\]|\\.)*'/ | /"(?:[^"\\]|\\.)*"/
_LPAR: "("
_RPAR: ")"
_COMMA: ","

%ignore /[ \t]+/
"""

# How an error message names what the parser expected next.
EXPECTED = {
    "ACTION": "an action (allow, block, review or request_3ds)",
    "_IF": "'if'",
    "_AND": "'and'",
    "_OR": "'or'",
    "_NOT": "'not'",
    "_IN": "'in'",
    "ATTRIBUTE": "an :attribute:",
    "METADATA": "a ::metadata_key::",
    "LIST": "a @list",
    "COMPARATOR": "a comparison (=, !=, <, <=, >, >=)",
    "NUMBER": "a number",
    "STRING": "a 'text'",
    "TRUE": "true",
    "FALSE": "false",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "_COMMA": "','",
    "$END": "the end of the rule",
}


class RuleInvalid(InvalidRequest):
    """A rule that does not parse or names what does not exist: 400 `rule_invalid`, with the
    column (from 1) of the rule text where the error is."""

    code = ErrorCode.RULE_INVALID

    def __init__(self, message: str, *, column: int, param: str = "rule"):
        super().__init__(f"{message} (column {column})", param=param)
        self.reason = message
        self.column = column

    def extra(self) -> dict:
        return {"column": self.column}


@functools.cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _unquote(text: str) -> str:
    body = text[1:-1]
    out, escaped = [], False
    for char in body:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)


@v_args(meta=True)
class _ToAst(Transformer):
    """lark's tree -> fraud.screening.language.ast, resolving Radar's aliases."""

    def start(self, meta, children):
        action, condition = children
        return ast.Rule(action=ast.Action(action.lower()), condition=condition)

    def or_(self, meta, children):
        return ast.Or(tuple(_flatten(children, ast.Or)), column=meta.column)

    def and_(self, meta, children):
        return ast.And(tuple(_flatten(children, ast.And)), column=meta.column)

    def not_(self, meta, children):
        return ast.Not(children[0], column=meta.column)

    def compare(self, meta, children):
        left, op, right = children
        return ast.Compare(op=str(op), left=left, right=right, column=meta.column)

    def in_list(self, meta, children):
        return ast.InList(operand=children[0], list_name=children[1], column=meta.column)

    def not_in_list(self, meta, children):
        return ast.InList(operand=children[0], list_name=children[1], negated=True, column=meta.column)

    def in_values(self, meta, children):
        return ast.InValues(operand=children[0], values=tuple(children[1]), column=meta.column)

    def not_in_values(self, meta, children):
        return ast.InValues(operand=children[0], values=tuple(children[1]), negated=True, column=meta.column)

    def truth(self, meta, children):
        return ast.Truth(operand=children[0], column=meta.column)

    def literals(self, meta, children):
        return list(children)

    def attribute(self, meta, children):
        token: Token = children[0]
        name = token[1:-1].lower()
        return ast.Attribute(ALIASES.get(name, name), column=token.column)

    def metadata(self, meta, children):
        token: Token = children[0]
        return ast.Metadata(token[2:-2], column=token.column)

    def number(self, meta, children):
        token: Token = children[0]
        try:
            return ast.Literal(Decimal(token), column=token.column)
        except InvalidOperation:  # pragma: no cover - the terminal only matches decimals
            raise RuleInvalid(f"{token!s} is not a number", column=token.column) from None

    def string(self, meta, children):
        token: Token = children[0]
        return ast.Literal(_unquote(token), column=token.column)

    def true(self, meta, children):
        return ast.Literal(True, column=children[0].column)

    def false(self, meta, children):
        return ast.Literal(False, column=children[0].column)

    def list_ref(self, meta, children):
        token: Token = children[0]
        return _ListName(token[1:].lower(), token.column)


class _ListName(str):
    """A list's name with the column it was written at (for the checks)."""

    column: int

    def __new__(cls, value: str, column: int):
        name = super().__new__(cls, value)
        name.column = column
        return name


def _flatten(children, kind):
    for child in children:
        if isinstance(child, kind):
            yield from child.operands
        else:
            yield child


def parse_rule(text: str) -> ast.Rule:
    """The checked syntax tree of `text`, or RuleInvalid naming the column of the error."""
    if not isinstance(text, str) or not text.strip():
        raise RuleInvalid("The rule is empty: write it as `ACTION if CONDITION`", column=1)
    if len(text) > MAX_RULE_LENGTH:
        raise RuleInvalid(f"The rule is longer than {MAX_RULE_LENGTH} characters", column=MAX_RULE_LENGTH + 1)
    if "\n" in text or "\r" in text:
        raise RuleInvalid("A rule is one line", column=min(i for i in (text.find("\n"), text.find("\r")) if i >= 0) + 1)
    try:
        tree = _parser().parse(text)
        rule = _ToAst().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, RuleInvalid):
            raise exc.orig_exc from None
        raise
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    _check(rule, text)
    return rule


def _syntax_error(exc: UnexpectedInput, text: str) -> RuleInvalid:
    expected = sorted(EXPECTED.get(name, name) for name in (getattr(exc, "expected", None) or ()) if not name.startswith("__"))
    wanted = f"; expected {_one_of(expected)}" if expected else ""
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        return RuleInvalid(f"The rule ends too early{wanted}", column=len(text.rstrip()) + 1)
    if isinstance(exc, UnexpectedCharacters):
        allowed = getattr(exc, "allowed", None) or ()
        expected = sorted(EXPECTED.get(name, name) for name in allowed if not name.startswith("__"))
        wanted = f"; expected {_one_of(expected)}" if expected else ""
        return RuleInvalid(f"Unexpected {text[exc.column - 1]!r}{wanted}", column=exc.column)
    token = exc.token  # UnexpectedToken
    return RuleInvalid(f"Unexpected {str(token)!r}{wanted}", column=token.column)


def _one_of(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


# --- the checks after parsing ---------------------------------------------------------------
def _kind_of(operand) -> Kind | None:
    """The kind of an operand; None for metadata (any kind: compared as written)."""
    if isinstance(operand, ast.Attribute):
        return ATTRIBUTES[operand.name].kind
    if isinstance(operand, ast.Literal):
        if isinstance(operand.value, bool):
            return Kind.BOOLEAN
        return Kind.NUMBER if isinstance(operand.value, Decimal) else Kind.TEXT
    return None


def _describe(operand) -> str:
    if isinstance(operand, ast.Attribute):
        return f":{operand.name}:"
    if isinstance(operand, ast.Metadata):
        return f"::{operand.key}::"
    return repr(operand.value) if not isinstance(operand.value, Decimal) else str(operand.value)


def _check(rule: ast.Rule, text: str) -> None:
    for node in ast.walk(rule):
        if isinstance(node, ast.Attribute) and node.name not in ATTRIBUTES:
            raise RuleInvalid(f"Unknown attribute :{node.name}:", column=node.column)
    for node in ast.walk(rule):
        if isinstance(node, ast.Compare):
            _check_compare(node)
        elif isinstance(node, ast.InList):
            _check_in_list(node)
        elif isinstance(node, ast.InValues):
            kind = _kind_of(node.operand)
            for value in node.values:
                if kind is not None and _kind_of(value) != kind:
                    raise RuleInvalid(f"{_describe(node.operand)} is {_article(kind)}; {_describe(value)} is not",
                                      column=value.column)
        elif isinstance(node, ast.Truth):
            operand = node.operand
            if isinstance(operand, ast.Literal) or (isinstance(operand, ast.Attribute) and _kind_of(operand) != Kind.BOOLEAN):
                raise RuleInvalid(f"{_describe(operand)} is not a condition: compare it (=, !=, <, >, …) or test it with "
                                  "'in'", column=operand.column)


def _check_compare(node: ast.Compare) -> None:
    left, right = _kind_of(node.left), _kind_of(node.right)
    if left is not None and right is not None and left != right:
        culprit = node.right if isinstance(node.left, ast.Attribute) else node.left
        anchor = node.left if culprit is node.right else node.right
        raise RuleInvalid(f"{_describe(anchor)} is {_article(_kind_of(anchor))}; {_describe(culprit)} is not",
                          column=culprit.column)
    if node.op in ("<", "<=", ">", ">="):
        for operand in (node.left, node.right):
            kind = _kind_of(operand)
            if kind is not None and kind != Kind.NUMBER:
                raise RuleInvalid(f"{node.op} compares numbers; {_describe(operand)} is {_article(kind)}",
                                  column=operand.column)


def _check_in_list(node: ast.InList) -> None:
    name = node.list_name
    column = getattr(name, "column", node.column)
    if name not in LISTS:
        raise RuleInvalid(f"Unknown list @{name} (the lists are {', '.join('@' + n for n in sorted(LISTS))})", column=column)
    operand = node.operand
    attribute = attribute_named(operand.name) if isinstance(operand, ast.Attribute) else None
    if attribute is None or attribute.list_kind != LISTS[name]:
        raise RuleInvalid(f"@{name} holds values of kind {LISTS[name]}; {_describe(operand)} is not one",
                          column=operand.column)


def _article(kind: Kind | None) -> str:
    return {Kind.NUMBER: "a number", Kind.TEXT: "text", Kind.BOOLEAN: "true or false"}.get(kind, "a value")
