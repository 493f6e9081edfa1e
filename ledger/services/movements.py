"""The posting rules of payments, refunds and chargebacks: what each money movement debits
and credits (the table in docs/architecture.md, "The ledger"). Each function is called once
per movement by the service that makes it, inside that service's database transaction, with
plain facts (ids, amounts, the gateway), never with another app's model: the ledger sits
below payments and refunds.

A, R, P, V below are the merchant's available funds, receivable, pending funds and reserve;
G(g) the clearing account of gateway g; CR the chargeback receivable; REV platform revenue.

A "merchant debit" takes from A and, past what A holds, from R (the merchant then owes
FlowPay: a negative available balance); a "merchant credit" pays R first, then A.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ledger.models import AccountCode, BalanceType, LedgerKind, SourceType
from ledger.services.postings import AccountRef, Leg, Posting, PostingResult, credit, debit, ledger_post
from ledger.services.terms import merchant_terms

C = AccountCode
AVAILABLE = AccountRef(C.MERCHANT_AVAILABLE)
RECEIVABLE = AccountRef(C.MERCHANT_RECEIVABLE)
PENDING = AccountRef(C.MERCHANT_PENDING)
RESERVE = AccountRef(C.MERCHANT_RESERVE)
FEES = AccountRef(C.FEES)
REVENUE = AccountRef(C.PLATFORM_REVENUE)
CHARGEBACK_RECEIVABLE = AccountRef(C.CHARGEBACK_RECEIVABLE)
IN_TRANSIT = AccountRef(C.PAYOUTS_IN_TRANSIT)
# The clearing "gateway" of refunds paid outside any gateway (off-gateway credits).
OFF_GATEWAY = "manual"


def clearing(gateway: str) -> AccountRef:
    return AccountRef(C.GATEWAY_CLEARING, gateway=gateway or OFF_GATEWAY)


def merchant_debit(amount: int, **kwargs) -> Leg:
    return debit(AVAILABLE, amount, overflow_to=RECEIVABLE, **kwargs)


def merchant_credit(amount: int, **kwargs) -> Leg:
    return credit(AVAILABLE, amount, settles_first=RECEIVABLE, **kwargs)


@dataclass(frozen=True)
class Money:
    """Whose money, in which mode and currency."""

    merchant_id: int
    livemode: bool
    currency: str


def ledger_post_capture(
    *, money: Money, gateway: str, transaction_public_id: str, amount: int, gateway_fee: int | None,
    captured_at: dt.datetime,
) -> PostingResult:
    """A payment captured (in full or in part): D G(g) amount - Fg, D FEES Fg, C P amount - F,
    C REV F. F, the merchant's fee, is the gateway's own fee Fg when it reported one (its
    balance transaction), else the merchant's fee schedule (Fg then unknown, 0 here, corrected
    at reconciliation). The net amount becomes available after the merchant's delay."""
    terms = merchant_terms(money.merchant_id)
    gateway_fee = None if gateway_fee is None else max(0, gateway_fee)
    fee = min(amount, gateway_fee) if gateway_fee is not None else terms.payment_fee(amount)
    known_gateway_fee = gateway_fee or 0
    legs = [
        debit(clearing(gateway), amount - known_gateway_fee) if amount >= known_gateway_fee
        else credit(clearing(gateway), known_gateway_fee - amount),
        debit(FEES, known_gateway_fee),
        credit(PENDING, amount - fee),
        credit(REVENUE, fee),
    ]
    return ledger_post(posting=Posting(
        **money.__dict__, kind=LedgerKind.PAYMENT, idempotency_key=f"payment:{transaction_public_id}",
        source_type=SourceType.TRANSACTION, source_id=transaction_public_id, legs=legs,
        effective_at=captured_at, available_on=captured_at + terms.availability_delay,
        balance_type=BalanceType.PAYMENT, amount=amount, fee=fee, description=f"Payment {transaction_public_id}",
    ))


def ledger_post_refund(
    *, money: Money, gateway: str, refund_public_id: str, transaction_public_id: str, amount: int,
    refunded_at: dt.datetime,
) -> PostingResult:
    """A refund succeeded: a merchant debit of the amount, C G(g) (the gateway paid it back;
    "manual" for an off-gateway credit). Fees are not returned."""
    return ledger_post(posting=Posting(
        **money.__dict__, kind=LedgerKind.REFUND, idempotency_key=f"refund:{refund_public_id}",
        source_type=SourceType.REFUND, source_id=refund_public_id,
        legs=[merchant_debit(amount), credit(clearing(gateway), amount)], effective_at=refunded_at,
        balance_type=BalanceType.REFUND, amount=-amount, description=f"Refund of {transaction_public_id}",
    ))


@dataclass(frozen=True)
class ChargebackFacts:
    money: Money
    gateway: str
    public_id: str
    transaction_public_id: str
    amount: int  # disputed
    opened_at: dt.datetime


def ledger_post_chargeback_opened(*, chargeback: ChargebackFacts, gateway_fee: int | None) -> PostingResult:
    """A dispute opened: the gateway withdrew the amount D and its fee Fd (D CR D, D FEES Fg,
    C G(g) D + Fg); the merchant's funds are held in reserve and the fee charged (a merchant
    debit of D + F, C V D, C REV F). F is the gateway's dispute fee when it reported one,
    else the merchant's scheduled dispute fee."""
    fee = gateway_fee if gateway_fee is not None else merchant_terms(chargeback.money.merchant_id).dispute_fee
    known_gateway_fee = gateway_fee or 0
    amount = chargeback.amount
    legs = [
        merchant_debit(amount + fee), credit(RESERVE, amount), credit(REVENUE, fee),
        debit(CHARGEBACK_RECEIVABLE, amount), debit(FEES, known_gateway_fee),
        credit(clearing(chargeback.gateway), amount + known_gateway_fee),
    ]
    return ledger_post(posting=Posting(
        **chargeback.money.__dict__, kind=LedgerKind.CHARGEBACK, idempotency_key=f"chargeback:{chargeback.public_id}:opened",
        source_type=SourceType.CHARGEBACK, source_id=chargeback.public_id, legs=legs, effective_at=chargeback.opened_at,
        balance_type=BalanceType.CHARGEBACK, amount=-amount, fee=fee,
        description=f"Chargeback {chargeback.public_id} on {chargeback.transaction_public_id}",
    ))


def ledger_post_chargeback_lost(
    *, chargeback: ChargebackFacts, withdrawn: int, on_refunded_funds: int, closed_at: dt.datetime,
) -> PostingResult:
    """Lost or accepted: the reserve (D) settles what the gateway kept (C CR withdrawn). The
    part of the dispute on money already refunded (on_refunded_funds) is not taken from the
    merchant twice: it goes back to the merchant (a merchant credit) and FlowPay absorbs the
    gateway's claim (D REV, C CR). A chargeback opened before the ledger is opened first."""
    ledger_post_chargeback_opened(chargeback=chargeback, gateway_fee=None)
    legs = [
        debit(RESERVE, chargeback.amount), credit(CHARGEBACK_RECEIVABLE, withdrawn),
        merchant_credit(on_refunded_funds), debit(REVENUE, on_refunded_funds),
        credit(CHARGEBACK_RECEIVABLE, on_refunded_funds),
    ]
    shown = {"balance_type": BalanceType.CHARGEBACK_REVERSAL, "amount": on_refunded_funds} if on_refunded_funds else {}
    return ledger_post(posting=Posting(
        **chargeback.money.__dict__, kind=LedgerKind.CHARGEBACK_LOST, idempotency_key=f"chargeback:{chargeback.public_id}:lost",
        source_type=SourceType.CHARGEBACK, source_id=chargeback.public_id, legs=legs, effective_at=closed_at,
        description=f"Chargeback {chargeback.public_id} lost", **shown,
    ))


def ledger_post_chargeback_won(*, chargeback: ChargebackFacts, closed_at: dt.datetime) -> PostingResult:
    """Won: the gateway gives the amount back (D G(g), C CR) and the reserve returns to the
    merchant (D V, merchant credit). The dispute fee is not returned."""
    ledger_post_chargeback_opened(chargeback=chargeback, gateway_fee=None)
    amount = chargeback.amount
    legs = [debit(clearing(chargeback.gateway), amount), credit(CHARGEBACK_RECEIVABLE, amount),
            debit(RESERVE, amount), merchant_credit(amount)]
    return ledger_post(posting=Posting(
        **chargeback.money.__dict__, kind=LedgerKind.CHARGEBACK_WON, idempotency_key=f"chargeback:{chargeback.public_id}:won",
        source_type=SourceType.CHARGEBACK, source_id=chargeback.public_id, legs=legs, effective_at=closed_at,
        balance_type=BalanceType.CHARGEBACK_REVERSAL, amount=amount,
        description=f"Chargeback {chargeback.public_id} won: funds reinstated",
    ))


def ledger_post_chargeback_absorbed(
    *, chargeback: ChargebackFacts, moved: int, withdrawn_total: int, occurred_at: dt.datetime,
) -> PostingResult:
    """A refund the lost dispute counted as refunded money failed: that part of the dispute
    is withdrawn from the merchant after all (a merchant debit of `moved`, C REV: the loss
    FlowPay absorbed at the close is undone). Keyed by the chargeback's new withdrawn total."""
    return ledger_post(posting=Posting(
        **chargeback.money.__dict__, kind=LedgerKind.CHARGEBACK_ABSORBED,
        idempotency_key=f"chargeback:{chargeback.public_id}:withdrawn:{withdrawn_total}",
        source_type=SourceType.CHARGEBACK, source_id=chargeback.public_id,
        legs=[merchant_debit(moved), credit(REVENUE, moved)], effective_at=occurred_at,
        balance_type=BalanceType.CHARGEBACK, amount=-moved,
        description=f"Chargeback {chargeback.public_id}: refunded funds it covered were not refunded",
    ))
