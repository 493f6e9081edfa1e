"""The rules language (Radar's): parse_rule() gives a checked syntax tree or RuleInvalid
with the column of the error; rule_matches() evaluates a tree against a payment's signals."""

from fraud.screening.language.ast import Action, Rule
from fraud.screening.language.evaluate import rule_matches
from fraud.screening.language.parser import RuleInvalid, parse_rule

__all__ = ["Action", "Rule", "RuleInvalid", "parse_rule", "rule_matches"]
