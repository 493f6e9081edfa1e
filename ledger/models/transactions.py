"""Ledger transactions and their entries: immutable, balanced, append-only.

A ledger transaction is one money movement (a capture, a refund, funds becoming available,
a payout step, ...), in one currency, for one merchant and mode. Its entries each move an
amount (> 0) on one account, on one side, in one phase:
- `posted`: money that moved (debits_posted / credits_posted);
- `pending`: a reservation of a two-phase transfer (debits_pending / credits_pending);
- `released`: the end of a reservation (subtracted from the pending totals), written when
  the transfer is posted or voided.

Rules enforced by PostgreSQL, not only by Python (ledger migration 0002):
- within each phase, Σ debits = Σ credits per currency, checked at COMMIT by a deferred
  constraint trigger (an unbalanced transaction inserted by raw SQL is refused at commit);
- a transaction has at least two entries;
- entries and transactions are append-only: UPDATE, DELETE and TRUNCATE are refused. A
  correction is a new transaction (an adjustment);
- an entry is in its account's currency and its transaction's ((account, currency) and
  (transaction, currency) foreign keys);
- entry N of an account carries version N (unique), so the entries of an account replay in
  order and a lost update would leave a gap or a duplicate.

`idempotency_key` is unique: a movement posted twice (a retried task, a redelivered event,
the backfill run again) is one ledger transaction.
"""

from django.db import models
from django.db.models import F, Q

from core.models import new_public_id
from ledger.models.accounts import Side


class LedgerKind(models.TextChoices):
    """The posting rule that wrote the transaction (docs/architecture.md, the ledger)."""

    PAYMENT = "payment"  # a capture: gateway clearing -> merchant pending, less the fee
    AVAILABILITY = "availability"  # a payment's net amount: pending -> available
    REFUND = "refund"
    CHARGEBACK = "chargeback"  # a dispute opened: the amount held in reserve, its fee charged
    CHARGEBACK_LOST = "chargeback_lost"  # lost or accepted: the reserve settles the gateway's withdrawal
    CHARGEBACK_WON = "chargeback_won"  # the funds reinstated
    CHARGEBACK_ABSORBED = "chargeback_absorbed"  # a refund the dispute covered failed: the merchant bears it
    PAYOUT = "payout"  # reserved from available (pending phase)
    PAYOUT_IN_TRANSIT = "payout_in_transit"  # the gateway took it: the reservation posted
    PAYOUT_PAID = "payout_paid"  # arrived: in transit -> gateway clearing
    PAYOUT_FAILURE = "payout_failure"  # refused or failed: the funds back to available
    ADJUSTMENT = "adjustment"  # reconciliation or manual (four-eyes)


class BalanceType(models.TextChoices):
    """A balance transaction's `type` in the merchant API (Stripe's vocabulary)."""

    PAYMENT = "payment"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    CHARGEBACK_REVERSAL = "chargeback_reversal"
    FEE = "fee"
    PAYOUT = "payout"
    PAYOUT_FAILURE = "payout_failure"
    ADJUSTMENT = "adjustment"


class SourceType(models.TextChoices):
    TRANSACTION = "transaction"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    PAYOUT = "payout"
    RECONCILIATION_ITEM = "reconciliation_item"
    ADJUSTMENT = "adjustment"
    LEDGER_TRANSACTION = "ledger_transaction"


class Phase(models.TextChoices):
    POSTED = "posted"
    PENDING = "pending"
    RELEASED = "released"


def _ledger_transaction_id() -> str:
    return new_public_id("bt")


class LedgerTransaction(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=_ledger_transaction_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="ledger_transactions")
    livemode = models.BooleanField(default=False)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=24, choices=LedgerKind.choices)
    idempotency_key = models.CharField(max_length=255, unique=True)
    # What the merchant sees (GET /payment/balance-transactions): its type (none: an internal
    # movement, such as funds becoming available), the gross amount, the fee and the net
    # effect on its funds, net = amount - fee, all signed minor units.
    balance_type = models.CharField(max_length=24, choices=BalanceType.choices, null=True, blank=True)
    amount = models.BigIntegerField(default=0)
    fee = models.BigIntegerField(default=0)
    net = models.BigIntegerField(default=0)
    # The object whose change this records (its public id).
    source_type = models.CharField(max_length=24, choices=SourceType.choices)
    source_id = models.CharField(max_length=64)
    # The payment an availability transaction releases.
    related_transaction = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="follow_ups"
    )
    payout = models.ForeignKey("ledger.Payout", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_transactions")
    description = models.CharField(max_length=500, blank=True, default="")
    # When the movement happened (the capture, the refund's success; a backfilled row keeps
    # its original time), and when its net amount is (or was) available: a payment's after
    # the merchant's availability delay, every other movement's at once.
    effective_at = models.DateTimeField()
    available_on = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "ledger_transaction"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "livemode", "-created_at", "-id"], name="ledger_txn_merchant_list",
                         condition=Q(balance_type__isnull=False)),
            models.Index(fields=["source_type", "source_id"], name="ledger_txn_source"),
            # The payments still to release (the availability task's scan).
            models.Index(fields=["available_on"], name="ledger_txn_payment_available", condition=Q(kind="payment")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["id", "currency"], name="ledger_txn_id_currency"),
            # A payment becomes available once.
            models.UniqueConstraint(fields=["related_transaction"], condition=Q(kind="availability"),
                                    name="ledger_txn_released_once"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="ledger_txn_currency_iso4217"),
            models.CheckConstraint(condition=Q(kind__in=LedgerKind.values), name="ledger_txn_kind_valid"),
            models.CheckConstraint(condition=Q(net=F("amount") - F("fee")), name="ledger_txn_net_is_amount_less_fee"),
            models.CheckConstraint(
                condition=Q(balance_type__in=BalanceType.values) | Q(balance_type__isnull=True, amount=0, fee=0, net=0),
                name="ledger_txn_internal_moves_nothing_shown",
            ),
            models.CheckConstraint(
                condition=~Q(kind="availability") | Q(related_transaction__isnull=False),
                name="ledger_txn_availability_releases_a_payment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.kind}"


class LedgerEntry(models.Model):
    ledger_transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey("ledger.LedgerAccount", on_delete=models.PROTECT, related_name="entries")
    currency = models.CharField(max_length=3)
    side = models.CharField(max_length=6, choices=Side.choices)
    phase = models.CharField(max_length=8, choices=Phase.choices, default=Phase.POSTED)
    amount = models.BigIntegerField()
    # The account after this entry: its version (entry count), its posted balance and its
    # pending balance on its normal side.
    account_version = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    pending_after = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ledger_entry"
        ordering = ["account_id", "account_version"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=["account", "account_version"], name="ledger_entry_account_version_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_entry_amount_positive"),
            models.CheckConstraint(condition=Q(side__in=Side.values), name="ledger_entry_side_valid"),
            models.CheckConstraint(condition=Q(phase__in=Phase.values), name="ledger_entry_phase_valid"),
            models.CheckConstraint(condition=Q(account_version__gt=0), name="ledger_entry_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.amount} {self.currency} ({self.phase}) on account {self.account_id}"
