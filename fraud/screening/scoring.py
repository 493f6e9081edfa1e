"""The risk score: 0 to 100 from weighted signals, with the reasons that made it.

Weights (points, the total capped at 100):
- velocity: payments on the card within the hour beyond 3 (5 points each, up to 30),
  declines on the card within 24 hours (10 each, up to 30), payments by the customer or
  email address within the hour beyond 3 (5 each, up to 15); velocity adds 40 at most;
- a new customer (none, or no successful payment yet): 10;
- the client IP's country differs from the card's: 20; the billing country from the card's: 10;
- the customer's earlier disputes: 25 each, up to 50;
- an amount far above the customer's usual (3+ earlier payments in the currency): 3× the
  average 10, 5× 20, 10× 30.
Levels are Radar's: normal below 65, elevated from 65, highest from 75 (the platform rules
review from 65 and block from 75). An ordinary first payment scores 10: normal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from fraud.models import RiskLevel

ELEVATED_FROM = 65
HIGHEST_FROM = 75
VELOCITY_CAP = 40


@dataclass(frozen=True)
class Reason:
    signal: str
    points: int
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def _beyond(count, free: int, each: int, cap: int) -> int:
    return min(cap, each * max(0, int(count or 0) - free))


def _velocity(signals: Mapping) -> list[Reason]:
    reasons = []
    card = signals.get("total_charges_per_card_fingerprint_hourly")
    if _beyond(card, 3, 5, 30):
        reasons.append(Reason("total_charges_per_card_fingerprint_hourly", _beyond(card, 3, 5, 30),
                              f"{card} payments on this card within the hour"))
    declines = signals.get("declined_charges_per_card_fingerprint_daily")
    if declines:
        points = min(30, 10 * int(declines))
        reasons.append(Reason("declined_charges_per_card_fingerprint_daily", points,
                              f"{declines} declined payments on this card within 24 hours"))
    for subject in ("customer", "email"):
        count = signals.get(f"total_charges_per_{subject}_hourly")
        if _beyond(count, 3, 5, 15):
            reasons.append(Reason(f"total_charges_per_{subject}_hourly", _beyond(count, 3, 5, 15),
                                  f"{count} payments by this {subject.replace('_', ' ')} within the hour"))
    total, capped = 0, []
    for reason in reasons:  # the velocity cap, taken from the last reasons first
        points = min(reason.points, VELOCITY_CAP - total)
        if points > 0:
            capped.append(Reason(reason.signal, points, reason.detail))
            total += points
    return capped


def _history(signals: Mapping) -> list[Reason]:
    reasons = []
    if signals.get("is_new_customer"):
        reasons.append(Reason("is_new_customer", 10, "a new customer: no successful payment yet"))
    disputes = int(signals.get("customer_prior_disputes") or 0)
    if disputes:
        reasons.append(Reason("customer_prior_disputes", min(50, 25 * disputes), f"{disputes} earlier disputed payments"))
    average, successes = signals.get("customer_average_amount"), int(signals.get("customer_successful_payments") or 0)
    amount = signals.get("amount") or 0
    if average and successes >= 3:
        ratio = amount / average
        points = 30 if ratio >= 10 else 20 if ratio >= 5 else 10 if ratio >= 3 else 0
        if points:
            reasons.append(Reason("customer_average_amount", points,
                                  f"{ratio:.1f}× the customer's average payment of {average}"))
    return reasons


def _countries(signals: Mapping) -> list[Reason]:
    reasons = []
    card, ip, billing = signals.get("card_country"), signals.get("ip_country"), signals.get("billing_address_country")
    if card and ip and card != ip:
        reasons.append(Reason("ip_country", 20, f"the client is in {ip}, the card is from {card}"))
    if card and billing and card != billing:
        reasons.append(Reason("billing_address_country", 10, f"billed in {billing}, the card is from {card}"))
    return reasons


def risk_score(signals: Mapping) -> tuple[int, list[Reason]]:
    """The score of a payment's signals (velocity included) and its reasons, largest first."""
    reasons = [*_velocity(signals), *_history(signals), *_countries(signals)]
    reasons.sort(key=lambda reason: -reason.points)
    return min(100, sum(reason.points for reason in reasons)), reasons


def risk_level(score: int | None) -> str:
    if score is None:
        return RiskLevel.NOT_ASSESSED
    if score >= HIGHEST_FROM:
        return RiskLevel.HIGHEST
    return RiskLevel.ELEVATED if score >= ELEVATED_FROM else RiskLevel.NORMAL
