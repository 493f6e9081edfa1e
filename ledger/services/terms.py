"""A merchant's ledger terms: its MerchantLedgerSettings row, or the defaults of
flowpay/settings/ledger.py for a merchant without one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from core.lookups import UniqueLookup
from ledger.models import MerchantLedgerSettings, PayoutSchedule

# Read for every captured payment: its SQL built once.
SETTINGS_OF_MERCHANT = UniqueLookup(MerchantLedgerSettings, by=("merchant",))


@dataclass(frozen=True)
class LedgerTerms:
    availability_delay_days: int
    fee_percent_bps: int
    fee_fixed: int
    dispute_fee: int
    payout_schedule: str = PayoutSchedule.MANUAL
    payout_weekday: int = 0

    @property
    def availability_delay(self) -> dt.timedelta:
        return dt.timedelta(days=self.availability_delay_days)

    def payment_fee(self, amount: int) -> int:
        """The scheduled fee of a payment of `amount` minor units: the percentage rounded
        half up, plus the fixed part, never more than the amount itself (a payment never
        costs the merchant more than it brought)."""
        percent = (amount * self.fee_percent_bps + 5_000) // 10_000
        return min(amount, percent + self.fee_fixed)


def default_terms() -> LedgerTerms:
    return LedgerTerms(
        availability_delay_days=settings.FLOWPAY_LEDGER_AVAILABILITY_DELAY_DAYS,
        fee_percent_bps=settings.FLOWPAY_LEDGER_FEE_PERCENT_BPS,
        fee_fixed=settings.FLOWPAY_LEDGER_FEE_FIXED,
        dispute_fee=settings.FLOWPAY_LEDGER_DISPUTE_FEE,
    )


def merchant_terms(merchant_id: int) -> LedgerTerms:
    row = SETTINGS_OF_MERCHANT.get(merchant_id)
    if row is None:
        return default_terms()
    return LedgerTerms(
        availability_delay_days=row.availability_delay_days, fee_percent_bps=row.fee_percent_bps,
        fee_fixed=row.fee_fixed, dispute_fee=row.dispute_fee, payout_schedule=row.payout_schedule,
        payout_weekday=row.payout_weekday,
    )
