from ledger.models.accounts import ACCOUNT_RULES, MERCHANT_FUNDS_CODES, AccountCode, LedgerAccount, Side
from ledger.models.adjustments import AdjustmentStatus, LedgerAdjustment
from ledger.models.merchant_settings import MerchantLedgerSettings, PayoutSchedule
from ledger.models.payouts import Payout, PayoutStatus
from ledger.models.transactions import BalanceType, LedgerEntry, LedgerKind, LedgerTransaction, Phase, SourceType
from ledger.models.verification import LedgerVerificationRun

__all__ = [
    "ACCOUNT_RULES",
    "MERCHANT_FUNDS_CODES",
    "AccountCode",
    "AdjustmentStatus",
    "BalanceType",
    "LedgerAccount",
    "LedgerAdjustment",
    "LedgerEntry",
    "LedgerKind",
    "LedgerTransaction",
    "LedgerVerificationRun",
    "MerchantLedgerSettings",
    "Payout",
    "PayoutSchedule",
    "PayoutStatus",
    "Phase",
    "Side",
    "SourceType",
]
