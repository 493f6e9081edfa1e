"""The rules language: a table of valid rules with the syntax tree each parses to, and of
invalid ones with the column the error names."""

from decimal import Decimal

import pytest

from fraud.screening.language import RuleInvalid, parse_rule
from fraud.screening.language.ast import (
    Action,
    And,
    Attribute,
    Compare,
    InList,
    InValues,
    Literal,
    Metadata,
    Not,
    Or,
    Rule,
    Truth,
)

A, L = Attribute, Literal

VALID = [
    ("block if :amount: > 500000", Rule(Action.BLOCK, Compare(">", A("amount"), L(Decimal(500000))))),
    ("Block if :risk_score: >= 75", Rule(Action.BLOCK, Compare(">=", A("risk_score"), L(Decimal(75))))),
    ("REVIEW IF :ip_country: != :card_country:", Rule(Action.REVIEW, Compare("!=", A("ip_country"), A("card_country")))),
    ("allow if :email: in @allowed_emails", Rule(Action.ALLOW, InList(A("email"), "allowed_emails"))),
    ("block if :ip_address: not in @blocked_ip_addresses",
     Rule(Action.BLOCK, InList(A("ip_address"), "blocked_ip_addresses", negated=True))),
    ("block if :card_country: in ('NG', \"GH\")",
     Rule(Action.BLOCK, InValues(A("card_country"), (L("NG"), L("GH"))))),
    ("review if :card_funding: not in ('prepaid')", Rule(Action.REVIEW, InValues(A("card_funding"), (L("prepaid"),), negated=True))),
    ("request_3ds if :amount_in_usd: >= 10000.50", Rule(Action.REQUEST_3DS, Compare(">=", A("amount_in_usd"), L(Decimal("10000.50"))))),
    # Radar's velocity spelling resolves to the fingerprint attribute
    ("block if :total_charges_per_card_number_hourly: > 5",
     Rule(Action.BLOCK, Compare(">", A("total_charges_per_card_fingerprint_hourly"), L(Decimal(5))))),
    ("review if :is_new_customer:", Rule(Action.REVIEW, Truth(A("is_new_customer")))),
    ("review if :is_new_customer: = false", Rule(Action.REVIEW, Compare("=", A("is_new_customer"), L(False)))),
    ("review if ::segment:: = 'wholesale'", Rule(Action.REVIEW, Compare("=", Metadata("segment"), L("wholesale")))),
    ("block if :amount: < -1", Rule(Action.BLOCK, Compare("<", A("amount"), L(Decimal(-1))))),
    ("block if :email_domain: = 'it''s'".replace("''", "\\'"), Rule(Action.BLOCK, Compare("=", A("email_domain"), L("it's")))),
    # and binds tighter than or; parentheses group; not negates
    ("block if :amount: > 1 or :amount: < 0 and :currency: = 'usd'",
     Rule(Action.BLOCK, Or((Compare(">", A("amount"), L(Decimal(1))),
                             And((Compare("<", A("amount"), L(Decimal(0))), Compare("=", A("currency"), L("usd")))))))),
    ("block if (:amount: > 1 or :amount: < 0) and :currency: = 'usd'",
     Rule(Action.BLOCK, And((Or((Compare(">", A("amount"), L(Decimal(1))), Compare("<", A("amount"), L(Decimal(0))))),
                              Compare("=", A("currency"), L("usd")))))),
    ("allow if not :is_new_customer: and not (:risk_score: > 50)",
     Rule(Action.ALLOW, And((Not(Truth(A("is_new_customer"))), Not(Compare(">", A("risk_score"), L(Decimal(50)))))))),
    ("block if :a_1: = 1".replace(":a_1:", ":customer_prior_disputes:"),
     Rule(Action.BLOCK, Compare("=", A("customer_prior_disputes"), L(Decimal(1))))),
    ("block if :amount: > 1 or :amount: > 2 or :amount: > 3",  # flattened, not nested
     Rule(Action.BLOCK, Or(tuple(Compare(">", A("amount"), L(Decimal(n))) for n in (1, 2, 3))))),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text for text, _ in VALID])
def test_a_valid_rule_parses_to_its_syntax_tree(text, expected):
    assert parse_rule(text) == expected


INVALID = [
    # (rule, column of the error, words the message says)
    ("", 1, "empty"),
    ("   ", 1, "empty"),
    ("frobnicate if :amount: > 1", 1, "expected an action"),
    ("block :amount: > 5", 7, "expected 'if'"),
    ("block if", 9, "ends too early"),
    ("block if :amount: > 5 and", 26, "ends too early"),
    ("block if (:amount: > 5", 23, "ends too early"),
    ("block if :amount > 5", 10, "Unexpected ':'"),
    ("block if :amount: $ 5", 19, "Unexpected '$'"),
    ("block if :amount: > 5 5", 23, "Unexpected '5'"),
    ("block if :amount: >", 20, "ends too early"),
    ("block if :amont: > 5", 10, "Unknown attribute :amont:"),
    ("block if :amount: > 5 or :bogus: = 'x'", 26, "Unknown attribute :bogus:"),
    ("block if :amount: > 'x'", 21, ":amount: is a number"),
    ("block if :email: = 5", 20, ":email: is text"),
    ("block if :email: < 'a'", 10, "< compares numbers"),
    ("block if :email: in @blocked_ips", 21, "Unknown list @blocked_ips"),
    ("block if :email: in @blocked_card_fingerprints", 10, "holds values of kind card_fingerprint"),
    ("block if :amount: in @blocked_emails", 10, "holds values of kind email"),
    ("block if :card_country: in ('NG', 4)", 35, ":card_country: is text"),
    ("block if :amount:", 10, "is not a condition"),
    ("block if 'text'", 10, "is not a condition"),
    ("block if :amount: > 1\nor :amount: < 0", 22, "one line"),
    ("block if " + ":amount: > 1 or " * 70 + ":amount: > 1", 1001, "longer than 1000"),
]


@pytest.mark.parametrize(("text", "column", "words"), INVALID, ids=[t[:40] for t, _, _ in INVALID])
def test_an_invalid_rule_is_refused_with_the_column_of_its_error(text, column, words):
    with pytest.raises(RuleInvalid) as error:
        parse_rule(text)
    assert error.value.column == column, error.value.message
    assert words in error.value.message
    assert error.value.message.endswith(f"(column {column})")
    assert error.value.extra() == {"column": column}
    assert error.value.code == "rule_invalid" and error.value.http_status == 400
