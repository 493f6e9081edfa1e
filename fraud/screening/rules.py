"""Fraud rules: creating, changing and disabling them (each change a new version, audited),
the platform rules FlowPay ships, and the rules screening evaluates for a payment.

Rules:
- A rule that does not parse is never saved: parse_rule raises first (400 rule_invalid
  with the column).
- Versions are numbered under the rule's row lock, so two concurrent changes make versions
  n+1 and n+2, never two n+1; the rule points at its current version.
- A merchant changes its own rules only; platform rules are staff's (fraud.rules).
- Screening reads the current versions in one query and keeps each version's parsed tree
  in a per-process cache: versions never change, so the cache is never stale.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from accounts.models import Merchant
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import ErrorCode, InvalidRequest
from fraud.models import Rule, RuleMode, RuleVersion
from fraud.screening.language import Action, parse_rule
from fraud.screening.language import ast as rule_ast

ALLOW_LISTS = ("allow if :email: in @allowed_emails or :card_fingerprint: in @allowed_card_fingerprints"
               " or :ip_address: in @allowed_ip_addresses or :customer: in @allowed_customers")
BLOCK_LISTS = ("block if :email: in @blocked_emails or :card_fingerprint: in @blocked_card_fingerprints"
               " or :ip_address: in @blocked_ip_addresses or :customer: in @blocked_customers"
               " or :card_country: in @blocked_countries or :ip_country: in @blocked_countries"
               " or :billing_address_country: in @blocked_countries")
# (platform key, rule, description): applied to every merchant in both modes.
PLATFORM_RULES = [
    ("allow_lists", ALLOW_LISTS, "Allow what is on the merchant's allow lists."),
    ("block_lists", BLOCK_LISTS, "Block what is on the merchant's block lists."),
    ("review_elevated_risk", "review if :risk_score: >= 65", "Review payments of elevated risk (Radar's threshold)."),
    ("block_highest_risk", "block if :risk_score: >= 75", "Block payments of the highest risk (Radar's threshold)."),
]
EVALUATED_MODES = (RuleMode.ACTIVE, RuleMode.SHADOW)


def platform_rules_install(*, using: str = "default") -> int:
    """Create the shipped platform rules that do not exist yet (after migrate and flush).
    Returns how many were created; an existing one, changed or disabled by staff, is left as it is."""
    created = 0
    for key, source, description in PLATFORM_RULES:
        with transaction.atomic(using=using):
            if Rule.objects.using(using).filter(platform_key=key).exists():
                continue
            tree = parse_rule(source)
            rule = Rule.objects.using(using).create(platform_key=key)
            version = RuleVersion.objects.using(using).create(
                rule=rule, number=1, source=source, action=tree.action, mode=RuleMode.ACTIVE,
                description=description, created_by="flowpay",
            )
            rule.current_version = version
            rule.save(using=using, update_fields=["current_version", "updated_at"])
            created += 1
    return created


def _check_mode(mode: str) -> str:
    if mode not in (RuleMode.ACTIVE, RuleMode.SHADOW):
        raise InvalidRequest("mode must be 'active' or 'shadow' (DELETE disables a rule).", param="mode")
    return mode


@transaction.atomic
def rule_create(
    *, merchant: Merchant | None, livemode: bool | None, source: str, mode: str = RuleMode.ACTIVE, description: str = "",
    actor: Actor,
) -> Rule:
    """A merchant's rule (in the key's mode), or a platform rule (`merchant` None, staff)."""
    tree = parse_rule(source)
    _check_mode(mode)
    if merchant is not None:
        Merchant.objects.select_for_update().filter(pk=merchant.pk).exists()  # one creation at a time: the limit holds
        count = Rule.objects.filter(merchant=merchant, livemode=livemode).exclude(current_version__mode=RuleMode.DISABLED).count()
        if count >= settings.FLOWPAY_FRAUD_MAX_RULES:
            raise InvalidRequest(f"A merchant has at most {settings.FLOWPAY_FRAUD_MAX_RULES} fraud rules; disable one first.",
                                 code=ErrorCode.LIMIT_REACHED)
    rule = Rule.objects.create(merchant=merchant, livemode=livemode if merchant is not None else None)
    version = RuleVersion.objects.create(
        rule=rule, number=1, source=source.strip(), action=tree.action, mode=mode, description=description[:500],
        created_by=actor.id[:150],
    )
    rule.current_version = version
    rule.save(update_fields=["current_version", "updated_at"])
    audit_record(actor=actor, action=AuditAction.FRAUD_RULE_CREATE, target=rule, merchant_id=rule.merchant_id,
                 details={"version": 1, "rule": version.source, "mode": mode, "platform": merchant is None})
    return rule


@transaction.atomic
def rule_update(
    *, rule_id: int, actor: Actor, source: str | None = None, mode: str | None = None, description: str | None = None,
) -> Rule:
    """A new version with what changed (the rule text, the mode, the description)."""
    if source is None and mode is None and description is None:
        raise InvalidRequest("Send at least one of rule, mode and description.")
    if mode is not None:
        _check_mode(mode)
    tree = parse_rule(source) if source is not None else None
    rule = Rule.objects.select_for_update().get(pk=rule_id)
    current = rule.current_version
    version = _new_version(
        rule=rule, current=current, actor=actor, source=source.strip() if source is not None else current.source,
        action=tree.action if tree is not None else current.action, mode=mode or current.mode,
        description=description[:500] if description is not None else current.description,
    )
    audit_record(actor=actor, action=AuditAction.FRAUD_RULE_UPDATE, target=rule, merchant_id=rule.merchant_id,
                 details={"version": version.number, "rule": version.source, "mode": version.mode,
                          "previous_version": current.number})
    return rule


@transaction.atomic
def rule_disable(*, rule_id: int, actor: Actor) -> Rule:
    """Stop evaluating a rule: a new version in mode `disabled` (the history stays)."""
    rule = Rule.objects.select_for_update().get(pk=rule_id)
    current = rule.current_version
    if current.mode == RuleMode.DISABLED:
        return rule
    version = _new_version(rule=rule, current=current, actor=actor, source=current.source, action=current.action,
                           mode=RuleMode.DISABLED, description=current.description)
    audit_record(actor=actor, action=AuditAction.FRAUD_RULE_DISABLE, target=rule, merchant_id=rule.merchant_id,
                 details={"version": version.number, "previous_version": current.number})
    return rule


def _new_version(*, rule: Rule, current: RuleVersion, actor: Actor, source: str, action: str, mode: str,
                 description: str) -> RuleVersion:
    # Under the rule's row lock (the callers take it): the next number cannot race.
    version = RuleVersion.objects.create(
        rule=rule, number=current.number + 1, source=source, action=action, mode=mode, description=description,
        created_by=actor.id[:150],
    )
    rule.current_version = version
    rule.save(update_fields=["current_version", "updated_at"])
    return version


# --- what screening evaluates --------------------------------------------------------------------
@dataclass(frozen=True)
class CompiledRule:
    rule: str  # public id
    version: int
    action: Action
    mode: str
    source: str
    platform: bool
    tree: rule_ast.Rule

    def as_match(self) -> dict:
        """How a decision records a rule that matched it."""
        return {"rule": self.rule, "version": self.version, "action": str(self.action), "predicate": self.source,
                "mode": self.mode, "platform": self.platform}


_TREE_CACHE_SIZE = 8192
_trees: OrderedDict[int, rule_ast.Rule] = OrderedDict()
_trees_lock = threading.Lock()


def _tree(version_id: int, source: str) -> rule_ast.Rule:
    with _trees_lock:
        tree = _trees.get(version_id)
        if tree is not None:
            _trees.move_to_end(version_id)
            return tree
    tree = parse_rule(source)
    with _trees_lock:
        _trees[version_id] = tree
        while len(_trees) > _TREE_CACHE_SIZE:
            _trees.popitem(last=False)
    return tree


def compiled_rules(rows) -> list[CompiledRule]:
    """Rules from rows of (public id, merchant id, version id, number, action, mode, source),
    their trees from the cache (fraud.screening.reads makes the rows)."""
    return [
        CompiledRule(rule=public_id, version=number, action=Action(action), mode=mode, source=source,
                     platform=owner is None, tree=_tree(version_id, source))
        for public_id, owner, version_id, number, action, mode, source in rows
    ]
