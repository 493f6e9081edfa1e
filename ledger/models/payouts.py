"""Payouts: money leaving a merchant's available balance for its bank, through a gateway.

State machine (transitions are pure; ledger.services.payouts locks, calls, posts, audits):
    pending → in_transit (the gateway accepted it) → paid | failed
    pending → failed (the gateway refused it)

Ledger (ledger.services.payout_postings): creating a payout reserves its amount on the
merchant's available funds (a pending two-phase transfer, refused past what is available:
400 insufficient_funds); in_transit posts the reservation into payouts in transit; paid moves
it to the gateway's clearing account; failed gives it back (voids the reservation, or returns
what was in transit).

Like a payment, a payout is request-then-confirm: committed `pending` before the gateway is
called, under an idempotency key derived from the payout (`flowpay:<po_…>:payout`), so a
retry never pays out twice.
"""

from django.db import models
from django.db.models import Q
from django_fsm import FSMField, FSMModelMixin, transition

from core.models import TimeStampedModel, new_public_id
from core.money import MAX_AMOUNT


class PayoutStatus(models.TextChoices):
    PENDING = "pending"
    IN_TRANSIT = "in_transit"
    PAID = "paid"
    FAILED = "failed"


P = PayoutStatus


def _payout_id() -> str:
    return new_public_id("po")


class Payout(FSMModelMixin, TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_payout_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="payouts")
    livemode = models.BooleanField(default=False)
    amount = models.BigIntegerField()  # minor units of `currency`
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=500, blank=True, default="")
    status = FSMField(default=P.PENDING, choices=P.choices, protected=True, db_index=True)
    # Made by the merchant's payout schedule (daily, weekly) rather than by a request.
    automatic = models.BooleanField(default=False)
    # An automatic payout's (merchant, mode, currency, day): the schedule pays out once a day.
    schedule_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    gateway = models.CharField(max_length=20)
    gateway_reference = models.CharField(max_length=255, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)  # gateway calls made to create it
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A create call whose answer was lost: look the payout up before sending anything again.
    outcome_unknown = models.BooleanField(default=False)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    arrival_date = models.DateField(null=True, blank=True)
    in_transit_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    initiated_by_type = models.CharField(max_length=16)
    initiated_by_id = models.CharField(max_length=150)
    idempotency_record = models.OneToOneField(
        "core.IdempotencyRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="payout"
    )

    class Meta:
        db_table = "ledger_payout"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["merchant", "livemode", "-created_at", "-id"], name="payout_merchant_list")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(amount__lte=MAX_AMOUNT), name="payout_amount_in_range"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="payout_currency_iso4217"),
            models.CheckConstraint(condition=Q(status__in=P.values), name="payout_status_valid"),
            models.CheckConstraint(condition=~Q(gateway=""), name="payout_gateway_present"),
            models.CheckConstraint(
                condition=(Q(status=P.FAILED) & ~Q(failure_code="") & Q(failed_at__isnull=False))
                | (~Q(status=P.FAILED) & Q(failure_code="") & Q(failed_at__isnull=True)),
                name="payout_failure_iff_failed",
            ),
            models.CheckConstraint(
                condition=(Q(status=P.PAID) & Q(paid_at__isnull=False)) | (~Q(status=P.PAID) & Q(paid_at__isnull=True)),
                name="payout_paid_at_iff_paid",
            ),
            # Once the gateway has it, FlowPay knows the gateway's id.
            models.CheckConstraint(
                condition=~Q(status__in=[P.IN_TRANSIT, P.PAID]) | (~Q(gateway_reference="") & Q(in_transit_at__isnull=False)),
                name="payout_sent_has_reference",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def idempotency_key(self) -> str:
        """The key every gateway call creating this payout carries."""
        return f"flowpay:{self.public_id}:payout"

    # --- transitions (pure) ---------------------------------------------------------
    @transition(field=status, source=P.PENDING, target=P.IN_TRANSIT)
    def mark_in_transit(self, *, reference: str, arrival_date, now) -> None:
        self.gateway_reference = reference
        self.arrival_date = arrival_date
        self.in_transit_at = now
        self.next_attempt_at = None
        self.outcome_unknown = False

    @transition(field=status, source=P.IN_TRANSIT, target=P.PAID)
    def mark_paid(self, *, now) -> None:
        self.paid_at = now

    @transition(field=status, source=[P.PENDING, P.IN_TRANSIT], target=P.FAILED)
    def mark_failed(self, *, code: str, message: str, now) -> None:
        self.failure_code = (code or "payout_failed")[:64]
        self.failure_message = (message or "The payout failed.")[:500]
        self.failed_at = now
        self.next_attempt_at = None

    def record_attempt_error(self, *, unknown_outcome: bool, next_attempt_at) -> None:
        """The gateway could not be reached, or its answer was lost: stay pending, try again
        (with the same key) at `next_attempt_at`. Not a transition."""
        self.outcome_unknown = self.outcome_unknown or unknown_outcome
        self.next_attempt_at = next_attempt_at
