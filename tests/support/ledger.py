"""Fixtures and helpers shared by the ledger tests.

A pytest plugin: tests/conftest.py loads it (`pytest_plugins`); import the helper functions
by name (`from tests.support.ledger import balance_of`).

- `balance_of(merchant, currency)`: the merchant's balance in one currency (available,
  pending, reserved), as GET /payment/balance computes it;
- `release_all(merchant)`: every captured payment's funds made available now (as the beat
  task does once their date has come);
- `books_problems(merchant)`: what the ledger's own verifier finds wrong (nothing, always);
- `posting(...)`: a Posting between two accounts, for the posting service's own tests.
"""

import datetime as dt
from dataclasses import dataclass

import pytest
from django.utils import timezone

from ledger.models import AccountCode, BalanceType, LedgerKind, SourceType
from ledger.selectors import merchant_balances
from ledger.services.availability import ledger_release_due
from ledger.services.postings import AccountRef, Posting, credit, debit
from ledger.verification import ledger_verify_books


@dataclass(frozen=True)
class Balance:
    available: int
    pending: int
    reserved: int


def balance_of(merchant, currency: str = "USD", *, livemode: bool = False) -> Balance:
    for balance in merchant_balances(merchant_id=merchant.pk, livemode=livemode):
        if balance.currency == currency:
            return Balance(available=balance.available, pending=balance.pending, reserved=balance.reserved)
    return Balance(available=0, pending=0, reserved=0)


def release_all(*, days: int = 400) -> int:
    """Release every payment captured so far (their availability dates are all passed `days` from now)."""
    return ledger_release_due(now=timezone.now() + dt.timedelta(days=days), limit=100_000)


def books_problems(merchant=None) -> list[str]:
    return ledger_verify_books(merchant_id=merchant.pk if merchant is not None else None).problems


def hot_account(number: int) -> AccountRef:
    """One of several accounts with no balance rule (clearing accounts of made-up gateways)."""
    return AccountRef(AccountCode.GATEWAY_CLEARING, gateway=f"hot{number}")


def posting(merchant, *, key: str, debit_to: AccountRef, credit_to: AccountRef, amount: int, currency: str = "USD",
            kind: LedgerKind = LedgerKind.ADJUSTMENT, shown: int | None = None, legs=None, **legs_options) -> Posting:
    """`shown`: what the merchant sees the posting move on its funds (an adjustment's
    amount), when it touches them; `legs` replaces the two plain legs."""
    return Posting(
        merchant_id=merchant.pk, livemode=False, currency=currency, kind=kind, idempotency_key=key,
        source_type=SourceType.ADJUSTMENT, source_id=key[:64],
        legs=legs or [debit(debit_to, amount, **legs_options.get("debit", {})),
                      credit(credit_to, amount, **legs_options.get("credit", {}))],
        effective_at=timezone.now(), balance_type=BalanceType.ADJUSTMENT if shown is not None else None, amount=shown or 0,
    )


@pytest.fixture
def simulator_payout_failure():
    """Set the simulator's payout_failure fault (the bank returns payouts in transit)."""
    from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set

    def fail(code: str = "account_closed") -> None:
        simulator_faults_set(SimulatorFaults(payout_failure=code))

    yield fail
    simulator_faults_clear()
