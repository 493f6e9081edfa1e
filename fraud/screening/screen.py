"""fraud_screen: the one call the payment service makes before any gateway call.

Order of work, and what each mode skips:
1. signals of the request, the card (the gateway's look-up) and the IP country;
2. unless simplified flow: the customer's history, the velocity counters (Redis), the risk
   score. Counters out of reach → the decision is degraded: no velocity, no score, and
   FLOWPAY_FRAUD_FAILURE_POLICY applies (fail_open: lists and static rules decide;
   fail_closed: block unless an allow rule matches);
3. the rules (the merchant's and the platform's), evaluated against the signals with the
   merchant's lists (one query for both: fraud.screening.reads);
4. precedence (Radar's): a matching request_3ds rule asks for 3-D Secure and screening
   continues; then allow beats block, block beats review; nothing matched: allow. Shadow
   rules are evaluated and recorded, never acted on;
5. the decision is written (one INSERT), measured (fraud_detection_latency) and counted
   (fraud_decisions_total).
Simplified flow (the runbook's DR mode) skips 2 and says so on the decision; block lists
still hold. Screening never raises for a Redis or gateway failure: a payment is screened
degraded rather than refused with a 500.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from core.observability.metrics import fraud_decisions, fraud_detection_latency
from core.runtime import simplified_flow_enabled
from fraud.models import Decision
from fraud.screening.language import Action, rule_matches
from fraud.screening.lists import candidate_values, list_lookup
from fraud.screening.reads import screening_reads
from fraud.screening.rules import CompiledRule
from fraud.screening.scoring import risk_level, risk_score
from fraud.screening.selectors import remember_decision
from fraud.screening.signals import ScreeningRequest, payment_signals
from fraud.screening.velocity import VelocityUnavailable, velocity_count, velocity_record_decline

logger = logging.getLogger(__name__)

FAIL_CLOSED = "fail_closed"


@dataclass(frozen=True)
class Screening:
    """The decision, as the payment service acts on it."""

    decision_id: int
    outcome: Action
    three_d_secure: bool
    score: int | None
    level: str
    rules: list[dict]
    count_key: str
    subjects: dict

    @property
    def blocked(self) -> bool:
        return self.outcome == Action.BLOCK

    @property
    def held_for_review(self) -> bool:
        return self.outcome == Action.REVIEW

    def block_message(self) -> str:
        names = ", ".join(rule["predicate"] for rule in self.rules if rule["action"] == Action.BLOCK) or "the failure policy"
        return f"The payment was blocked by fraud screening ({names[:400]})."


def precedence(matched: list[CompiledRule]) -> tuple[Action, bool]:
    """(outcome, 3-D Secure requested) of the active rules that matched."""
    actions = {rule.action for rule in matched}
    three_d_secure = Action.REQUEST_3DS in actions
    for action in (Action.ALLOW, Action.BLOCK, Action.REVIEW):
        if action in actions:
            return action, three_d_secure
    return (Action.REQUEST_3DS if three_d_secure else Action.ALLOW), three_d_secure


def _subjects(signals: dict) -> dict:
    return {subject: signals.get(subject) for subject in ("card_fingerprint", "customer", "email", "ip_address")}


def fraud_screen(*, request: ScreeningRequest) -> Screening:
    """Screen one payment and record the decision (see the module docstring)."""
    started = time.perf_counter()
    simplified = simplified_flow_enabled()
    signals = payment_signals(request, with_history=not simplified)
    degraded_reason = ""
    reasons: list[dict] = []
    score = None
    if not simplified:
        try:
            signals.update(velocity_count(
                merchant_id=request.merchant_id, livemode=request.livemode, subjects=_subjects(signals),
                member=request.count_key,
            ))
        except VelocityUnavailable as exc:
            degraded_reason = f"velocity counters unavailable ({exc}); {settings.FLOWPAY_FRAUD_FAILURE_POLICY}"
            logger.warning("fraud screening degraded: %s", exc, extra={"transaction": request.transaction_public_id})
        else:
            score, made_of = risk_score(signals)
            reasons = [reason.as_dict() for reason in made_of]
            signals["risk_score"], signals["risk_level"] = score, str(risk_level(score))

    rules, listed = screening_reads(merchant_id=request.merchant_id, livemode=request.livemode,
                                    values=candidate_values(signals))
    lists = list_lookup(listed)
    active, shadow = [], []
    for rule in rules:
        if rule_matches(rule.tree, signals, lists):
            (shadow if rule.mode == "shadow" else active).append(rule)
    outcome, three_d_secure = precedence(active)
    allowed_by_rule = any(rule.action == Action.ALLOW for rule in active)
    if degraded_reason and settings.FLOWPAY_FRAUD_FAILURE_POLICY == FAIL_CLOSED and not allowed_by_rule:
        outcome = Action.BLOCK

    matched = [rule.as_match() for rule in active]
    decision = _decision_record(
        merchant_id=request.merchant_id, livemode=request.livemode, transaction_id=request.transaction_id,
        outcome=outcome, three_d_secure=three_d_secure, score=score, level=risk_level(score), reasons=reasons,
        signals=signals, rules=matched, shadow_rules=[rule.as_match() for rule in shadow], simplified=simplified,
        degraded=bool(degraded_reason), degraded_reason=degraded_reason[:200],
    )
    fraud_detection_latency.observe(time.perf_counter() - started)
    fraud_decisions.labels(decision=str(outcome)).inc()
    return Screening(
        decision_id=decision.pk, outcome=outcome, three_d_secure=three_d_secure, score=score, level=decision.level,
        rules=matched, count_key=request.count_key, subjects=_subjects(signals),
    )


def _decision_record(**fields) -> Decision:
    """Write the decision: one INSERT whose commit does not wait for its WAL flush
    (synchronous_commit off for that statement's transaction only). The payment's next
    commit, which does wait, makes it durable too, WAL being flushed in order; a crash in
    between loses the decision only together with what the payment did next, which the
    stuck-transaction checker settles. Screening never waits for the disk (bench row 9).
    Inside a caller's transaction, or off PostgreSQL, it is a plain INSERT."""
    decision = Decision(**fields)
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        decision.save(force_insert=True)
    else:
        _insert_relaxed(decision)
    remember_decision(decision)  # committed: safe to render from
    return decision


def _insert_relaxed(decision: Decision) -> None:
    """INSERT … RETURNING id in autocommit, preceded in the same statement by
    set_config('synchronous_commit', 'off', true): a setting local to the statement's own
    transaction, read when it commits. The values are the ORM's own (pre_save fills
    created_at, get_db_prep_save adapts the JSON fields)."""
    meta = Decision._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values = [field.get_db_prep_save(field.pre_save(decision, True), connection) for field in fields]
    quote = connection.ops.quote_name
    sql = (
        "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))"
        f" INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)})"
        f" SELECT {', '.join(['%s'] * len(fields))} FROM relaxed RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        decision.pk = cursor.fetchone()[0]
    decision._state.adding, decision._state.db = False, connection.alias


def fraud_record_decline(*, screening: Screening, merchant_id: int, livemode: bool) -> None:
    """The gateway declined a screened payment: count it for the declined_charges_* velocity."""
    velocity_record_decline(merchant_id=merchant_id, livemode=livemode, subjects=screening.subjects,
                            member=screening.count_key)
