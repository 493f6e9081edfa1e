"""The posting rules of a payout (A: the merchant's available funds, T: payouts in transit,
G(g): the paying gateway's clearing account). A payout is a two-phase transfer A -> T:

- created (pending): a reservation, D A / C T in the pending phase. A's rule counts pending
  debits, so a payout past what is available is refused (InsufficientFunds) and nothing is
  written; the merchant sees a `payout` balance transaction at once;
- in transit (the gateway took it): the reservation released and posted, D A / C T;
- paid: D T / C G(g), the gateway paid it from what it held;
- failed before the gateway took it: the reservation released (voided);
- failed in transit (returned by the bank): D T and a merchant credit (a receivable that
  appeared meanwhile is paid first); both failures are a `payout_failure` for the merchant.
"""

from __future__ import annotations

import datetime as dt

from ledger.models import BalanceType, LedgerKind, Payout, Phase, SourceType
from ledger.services.movements import AVAILABLE, IN_TRANSIT, clearing, merchant_credit
from ledger.services.postings import Leg, Posting, PostingResult, credit, debit, ledger_post

POSTED, PENDING, RELEASED = Phase.POSTED, Phase.PENDING, Phase.RELEASED


def _post(payout: Payout, *, kind: LedgerKind, step: str, legs: list[Leg], at: dt.datetime, **shown) -> PostingResult:
    return ledger_post(posting=Posting(
        merchant_id=payout.merchant_id, livemode=payout.livemode, currency=payout.currency, kind=kind,
        idempotency_key=f"payout:{payout.public_id}:{step}", source_type=SourceType.PAYOUT, source_id=payout.public_id,
        legs=legs, effective_at=at, payout_id=payout.pk, description=f"Payout {payout.public_id} {step}", **shown,
    ))


def post_payout_reserved(payout: Payout, *, at: dt.datetime) -> PostingResult:
    x = payout.amount
    return _post(payout, kind=LedgerKind.PAYOUT, step="reserved", at=at,
                 legs=[debit(AVAILABLE, x, phase=PENDING), credit(IN_TRANSIT, x, phase=PENDING)],
                 balance_type=BalanceType.PAYOUT, amount=-x)


def post_payout_in_transit(payout: Payout, *, at: dt.datetime) -> PostingResult:
    x = payout.amount
    return _post(payout, kind=LedgerKind.PAYOUT_IN_TRANSIT, step="in_transit", at=at, legs=[
        debit(AVAILABLE, x, phase=RELEASED), credit(IN_TRANSIT, x, phase=RELEASED),
        debit(AVAILABLE, x), credit(IN_TRANSIT, x),
    ])


def post_payout_paid(payout: Payout, *, at: dt.datetime) -> PostingResult:
    x = payout.amount
    return _post(payout, kind=LedgerKind.PAYOUT_PAID, step="paid", at=at,
                 legs=[debit(IN_TRANSIT, x), credit(clearing(payout.gateway), x)])


def post_payout_failed(payout: Payout, *, was_in_transit: bool, at: dt.datetime) -> PostingResult:
    x = payout.amount
    if was_in_transit:
        legs = [debit(IN_TRANSIT, x), merchant_credit(x)]
    else:
        legs = [debit(AVAILABLE, x, phase=RELEASED), credit(IN_TRANSIT, x, phase=RELEASED)]
    return _post(payout, kind=LedgerKind.PAYOUT_FAILURE, step="failed", at=at, legs=legs,
                 balance_type=BalanceType.PAYOUT_FAILURE, amount=x)
