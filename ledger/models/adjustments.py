"""Ledger adjustments (reconciliation corrections, manual corrections) under four eyes.

State machine:
    requires_approval → posted (approve: a second person, never the requester)
    requires_approval → rejected

An adjustment moves `amount` from its debit account to its credit account (of the
merchant's mode and currency); one side may be the merchant's available funds (a credit to
the merchant, or a debit that, past what is available, becomes a receivable), the other
platform revenue, gateway fees or a gateway's clearing account. It posts one ledger
transaction when approved, and a reason is always required.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django_fsm import FSMField, FSMModelMixin, transition

from core.models import TimeStampedModel, new_public_id
from core.money import MAX_AMOUNT
from ledger.models.accounts import AccountCode
from ledger.models.transactions import BalanceType

C = AccountCode
# The accounts an adjustment may move money between.
ADJUSTABLE_CODES = [C.MERCHANT_AVAILABLE, C.PLATFORM_REVENUE, C.FEES, C.GATEWAY_CLEARING]
# What a merchant sees an adjustment as.
ADJUSTMENT_TYPES = [BalanceType.ADJUSTMENT, BalanceType.FEE]


class AdjustmentStatus(models.TextChoices):
    REQUIRES_APPROVAL = "requires_approval"
    POSTED = "posted"
    REJECTED = "rejected"


A = AdjustmentStatus


def _adjustment_id() -> str:
    return new_public_id("adj")


class LedgerAdjustment(FSMModelMixin, TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_adjustment_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="ledger_adjustments")
    livemode = models.BooleanField(default=False)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    debit_code = models.CharField(max_length=32, choices=[(c.value, c.label) for c in ADJUSTABLE_CODES])
    credit_code = models.CharField(max_length=32, choices=[(c.value, c.label) for c in ADJUSTABLE_CODES])
    # The gateway of a gateway_clearing side.
    gateway = models.CharField(max_length=20, blank=True, default="")
    balance_type = models.CharField(max_length=24, choices=[(t.value, t.label) for t in ADJUSTMENT_TYPES],
                                    default=BalanceType.ADJUSTMENT)
    reason = models.CharField(max_length=500)
    # What it corrects, when it comes from reconciliation (an item's public id).
    source_type = models.CharField(max_length=24, blank=True, default="")
    source_id = models.CharField(max_length=64, blank=True, default="")
    status = FSMField(default=A.REQUIRES_APPROVAL, choices=A.choices, protected=True, db_index=True)
    requested_by_type = models.CharField(max_length=16)
    requested_by_id = models.CharField(max_length=150)
    requested_by_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=500, blank=True, default="")
    ledger_transaction = models.OneToOneField(
        "ledger.LedgerTransaction", null=True, blank=True, on_delete=models.PROTECT, related_name="adjustment"
    )

    class Meta:
        db_table = "ledger_adjustment"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(amount__lte=MAX_AMOUNT), name="ledger_adjustment_amount_in_range"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="ledger_adjustment_currency_iso4217"),
            models.CheckConstraint(condition=Q(status__in=A.values), name="ledger_adjustment_status_valid"),
            models.CheckConstraint(condition=~Q(debit_code=F("credit_code")), name="ledger_adjustment_two_accounts"),
            models.CheckConstraint(condition=~Q(reason=""), name="ledger_adjustment_reason_required"),
            models.CheckConstraint(
                condition=(Q(debit_code=C.GATEWAY_CLEARING) | Q(credit_code=C.GATEWAY_CLEARING)) & ~Q(gateway="")
                | ~(Q(debit_code=C.GATEWAY_CLEARING) | Q(credit_code=C.GATEWAY_CLEARING)) & Q(gateway=""),
                name="ledger_adjustment_gateway_iff_clearing",
            ),
            # Four eyes: posted means approved, by someone other than the requester.
            models.CheckConstraint(
                condition=(Q(status=A.POSTED) & Q(approved_by__isnull=False) & Q(ledger_transaction__isnull=False))
                | (~Q(status=A.POSTED) & Q(approved_by__isnull=True) & Q(ledger_transaction__isnull=True)),
                name="ledger_adjustment_posted_iff_approved",
            ),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | Q(requested_by_user__isnull=True)
                | ~Q(approved_by=F("requested_by_user")),
                name="ledger_adjustment_four_eyes",
            ),
            models.CheckConstraint(
                condition=(Q(status=A.REJECTED) & Q(rejected_by__isnull=False)) | (~Q(status=A.REJECTED) & Q(rejected_by__isnull=True)),
                name="ledger_adjustment_rejected_iff_rejecter",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    @transition(field=status, source=A.REQUIRES_APPROVAL, target=A.POSTED)
    def approve(self, *, user, ledger_transaction, now) -> None:
        self.approved_by = user
        self.approved_at = now
        self.ledger_transaction = ledger_transaction

    @transition(field=status, source=A.REQUIRES_APPROVAL, target=A.REJECTED)
    def reject(self, *, user, reason: str, now) -> None:
        self.rejected_by = user
        self.rejected_at = now
        self.rejection_reason = reason[:500]
