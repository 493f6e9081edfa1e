"""Ledger accounts: one per (merchant, mode, currency, code[, gateway]).

An account holds four running totals in integer minor units of its currency, TigerBeetle
style: `debits_posted`, `credits_posted` (money that moved) and `debits_pending`,
`credits_pending` (money reserved by a two-phase transfer, a payout not yet sent). Its
balance is read on its normal side: credits minus debits for a credit-normal account (what
FlowPay owes: merchant funds, revenue), debits minus credits for a debit-normal one (what
is owed to FlowPay: gateway clearing, receivables, fees paid).

Rules, also enforced by CHECK constraints so that no code path or raw UPDATE can break them:
- `debits_must_not_exceed_credits`: debits_posted + debits_pending <= credits_posted (a
  merchant's available funds, a reserve, payouts in transit never go below zero);
- `credits_must_not_exceed_debits`: the mirror rule for debit-normal accounts (a merchant
  receivable is never negative).
Totals change only through ledger.services.postings.ledger_post, under the row lock, and
`version` counts the entries the account has: entry N carries version N.
"""

from django.db import models
from django.db.models import F, Q

from core.models import TimeStampedModel


class AccountCode(models.TextChoices):
    # What the gateway holds for FlowPay on the merchant's behalf (debit-normal, per gateway).
    GATEWAY_CLEARING = "gateway_clearing"
    # The merchant's funds (credit-normal): captured but not yet available, available to pay
    # out, and held for open chargebacks.
    MERCHANT_PENDING = "merchant_pending"
    MERCHANT_AVAILABLE = "merchant_available"
    MERCHANT_RESERVE = "merchant_reserve"
    # What the merchant owes FlowPay once refunds, chargebacks and fees exceed its available
    # funds (debit-normal): a negative available balance, settled first by the next funds.
    MERCHANT_RECEIVABLE = "merchant_receivable"
    # Fees the gateways charged FlowPay for the merchant's payments and disputes (debit-normal).
    FEES = "fees"
    # Payouts on their way to the merchant's bank (credit-normal).
    PAYOUTS_IN_TRANSIT = "payouts_in_transit"
    # Disputed amounts the gateway withdrew while a chargeback is open (debit-normal).
    CHARGEBACK_RECEIVABLE = "chargeback_receivable"
    # Fees charged to the merchant, less dispute losses FlowPay absorbs (credit-normal).
    PLATFORM_REVENUE = "platform_revenue"


class Side(models.TextChoices):
    DEBIT = "debit"
    CREDIT = "credit"


C = AccountCode
# code -> (normal side, debits must not exceed credits, credits must not exceed debits)
ACCOUNT_RULES: dict[str, tuple[str, bool, bool]] = {
    C.GATEWAY_CLEARING: (Side.DEBIT, False, False),
    C.MERCHANT_PENDING: (Side.CREDIT, False, False),
    C.MERCHANT_AVAILABLE: (Side.CREDIT, True, False),
    C.MERCHANT_RESERVE: (Side.CREDIT, True, False),
    C.MERCHANT_RECEIVABLE: (Side.DEBIT, False, True),
    C.FEES: (Side.DEBIT, False, False),
    C.PAYOUTS_IN_TRANSIT: (Side.CREDIT, True, False),
    C.CHARGEBACK_RECEIVABLE: (Side.DEBIT, False, False),
    C.PLATFORM_REVENUE: (Side.CREDIT, False, False),
}
# The merchant's own funds: what GET /payment/balance reports and a balance transaction's
# `net` moves (the reserve is reported apart, as `reserved`).
MERCHANT_FUNDS_CODES = (C.MERCHANT_PENDING, C.MERCHANT_AVAILABLE, C.MERCHANT_RECEIVABLE)


class LedgerAccount(TimeStampedModel):
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="ledger_accounts")
    livemode = models.BooleanField(default=False)
    currency = models.CharField(max_length=3)
    code = models.CharField(max_length=32, choices=AccountCode.choices)
    # The gateway of a gateway_clearing account ("manual" for refunds paid outside any
    # gateway); empty for every other code.
    gateway = models.CharField(max_length=20, blank=True, default="")
    normal_side = models.CharField(max_length=6, choices=Side.choices)
    debits_must_not_exceed_credits = models.BooleanField(default=False)
    credits_must_not_exceed_debits = models.BooleanField(default=False)
    debits_posted = models.BigIntegerField(default=0)
    credits_posted = models.BigIntegerField(default=0)
    debits_pending = models.BigIntegerField(default=0)
    credits_pending = models.BigIntegerField(default=0)
    version = models.BigIntegerField(default=0)

    class Meta:
        db_table = "ledger_account"
        ordering = ["merchant_id", "livemode", "currency", "code", "gateway"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "livemode", "currency", "code", "gateway"], name="ledger_account_unique"),
            # The target of the entries' (account, currency) foreign key: an entry is always in
            # its account's currency.
            models.UniqueConstraint(fields=["id", "currency"], name="ledger_account_id_currency"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="ledger_account_currency_iso4217"),
            models.CheckConstraint(condition=Q(code__in=AccountCode.values), name="ledger_account_code_valid"),
            models.CheckConstraint(condition=Q(normal_side__in=Side.values), name="ledger_account_side_valid"),
            models.CheckConstraint(
                condition=(Q(code=C.GATEWAY_CLEARING) & ~Q(gateway="")) | (~Q(code=C.GATEWAY_CLEARING) & Q(gateway="")),
                name="ledger_account_gateway_iff_clearing",
            ),
            models.CheckConstraint(
                condition=Q(debits_posted__gte=0, credits_posted__gte=0, debits_pending__gte=0, credits_pending__gte=0,
                            version__gte=0),
                name="ledger_account_totals_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(debits_must_not_exceed_credits=False)
                | Q(debits_posted__lte=F("credits_posted") - F("debits_pending")),
                name="ledger_account_no_overdraft",
            ),
            models.CheckConstraint(
                condition=Q(credits_must_not_exceed_debits=False)
                | Q(credits_posted__lte=F("debits_posted") - F("credits_pending")),
                name="ledger_account_no_negative_receivable",
            ),
        ]

    def __str__(self) -> str:
        suffix = f":{self.gateway}" if self.gateway else ""
        mode = "live" if self.livemode else "test"
        return f"{self.code}{suffix} {self.currency} {mode} (merchant {self.merchant_id})"

    @property
    def balance(self) -> int:
        """Posted balance on the account's normal side."""
        if self.normal_side == Side.CREDIT:
            return self.credits_posted - self.debits_posted
        return self.debits_posted - self.credits_posted

    @property
    def pending_balance(self) -> int:
        """Reserved by pending transfers, on the normal side (negative: reserved away)."""
        if self.normal_side == Side.CREDIT:
            return self.credits_pending - self.debits_pending
        return self.debits_pending - self.credits_pending

    @property
    def spendable(self) -> int:
        """What a debit (credit, for a debit-normal account) may still take without
        breaking the account's rule: the posted balance less pending transfers away."""
        if self.normal_side == Side.CREDIT:
            return self.credits_posted - self.debits_posted - self.debits_pending
        return self.debits_posted - self.credits_posted - self.credits_pending
