"""Transactions (payments) and their gateway attempts.

State machine:
    pending → processing → {authorized, completed, failed, requires_action}
    requires_action → processing | canceled
    authorized → completed (capture) | canceled (void)
    completed → partially_refunded | refunded;  partially_refunded → refunded

Refund invariant (refunds app): `amount_refund_reserved` is the money committed to refunds,
succeeded + in flight + awaiting approval. Refunds reserve with one conditional UPDATE, and
CHECK constraints keep amount_refunded <= amount_refund_reserved <= amount_captured, so no
concurrency can refund more than was captured. Lost or accepted chargebacks add to
`amount_disputed` and set `disputed`.

Transitions are pure: they change fields only. Services lock the row, call the gateway,
transition, save and audit. A `processing` transaction whose gateway outcome is unknown is
a stuck transaction: it is resolved by asking the same gateway, never re-sent elsewhere.
"""

from django.db import models
from django.db.models import F, Q
from django_fsm import RETURN_VALUE, FSMField, FSMModelMixin, transition

from core.models import TimeStampedModel, new_public_id
from core.money import MAX_AMOUNT


class TransactionStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    REQUIRES_ACTION = "requires_action"
    AUTHORIZED = "authorized"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class CaptureMethod(models.TextChoices):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


S = TransactionStatus
# States in which money has been captured.
CAPTURED_STATES = [S.COMPLETED, S.PARTIALLY_REFUNDED, S.REFUNDED]
# States that are not final yet: they count as in flight.
INFLIGHT_STATES = [S.PENDING, S.PROCESSING, S.REQUIRES_ACTION]


def _transaction_id() -> str:
    return new_public_id("txn")


class Transaction(FSMModelMixin, TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_transaction_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="transactions")
    customer = models.ForeignKey(
        "payments.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    livemode = models.BooleanField(default=False)
    # Money is integer minor units of `currency`; floats never touch it.
    amount = models.BigIntegerField()
    amount_captured = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    # Refunds succeeded + in flight + awaiting approval (see the module docstring).
    amount_refund_reserved = models.BigIntegerField(default=0)
    # Funds withdrawn by lost or accepted chargebacks; `disputed` once there are any.
    amount_disputed = models.BigIntegerField(default=0)
    disputed = models.BooleanField(default=False, db_index=True)
    currency = models.CharField(max_length=3)
    capture_method = models.CharField(max_length=10, choices=CaptureMethod.choices, default=CaptureMethod.AUTOMATIC)
    status = FSMField(default=S.PENDING, choices=S.choices, protected=True, db_index=True)
    # The token the merchant sent (a gateway token or a saved method's id), and the gateway token used.
    payment_method = models.CharField(max_length=255)
    payment_method_token = models.CharField(max_length=255)
    saved_payment_method = models.ForeignKey(
        "payments.PaymentMethod", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    gateway = models.CharField(max_length=20, blank=True, db_index=True)
    gateway_reference = models.CharField(max_length=255, blank=True, db_index=True)
    description = models.CharField(max_length=1000, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    next_action = models.JSONField(null=True, blank=True)
    # The Idempotency-Key use that created this transaction: a crashed request that is
    # re-run under the same key finds this row instead of creating (and charging) again.
    idempotency_record = models.OneToOneField(
        "core.IdempotencyRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="transaction"
    )
    processing_started_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The runbook's name: `payments.transactions` (schema payments, core/schema.py).
        db_table = "transactions"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"]),
            models.Index(fields=["merchant", "status", "-created_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(amount__lte=MAX_AMOUNT), name="txn_amount_in_range"),
            models.CheckConstraint(
                condition=Q(amount_captured__gte=0) & Q(amount_captured__lte=F("amount")),
                name="txn_captured_within_amount",
            ),
            # Refunds can never exceed what was captured, whatever the concurrency.
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("amount_captured")),
                name="txn_refunded_within_captured",
            ),
            # Succeeded + in-flight refunds never exceed what was captured, whatever the concurrency.
            models.CheckConstraint(
                condition=Q(amount_refund_reserved__gte=F("amount_refunded"))
                & Q(amount_refund_reserved__lte=F("amount_captured")),
                name="txn_refund_reserved_within_captured",
            ),
            models.CheckConstraint(
                condition=Q(amount_disputed__gte=0) & Q(amount_disputed__lte=F("amount_captured")),
                name="txn_disputed_within_captured",
            ),
            # Money out (refunds reserved or made, funds a chargeback withdrew) never exceeds
            # money in, whatever the order of refunds and disputes.
            models.CheckConstraint(
                condition=Q(amount_refund_reserved__lte=F("amount_captured") - F("amount_disputed")),
                name="txn_refunds_and_disputes_within_captured",
            ),
            models.CheckConstraint(
                condition=Q(disputed=True, amount_disputed__gt=0) | Q(disputed=False, amount_disputed=0),
                name="txn_disputed_iff_amount_disputed",
            ),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="txn_currency_iso4217"),
            models.CheckConstraint(condition=Q(status__in=S.values), name="txn_status_valid"),
            models.CheckConstraint(condition=Q(capture_method__in=CaptureMethod.values), name="txn_capture_method_valid"),
            # Money is captured exactly in the captured states, and only there.
            models.CheckConstraint(
                condition=(Q(status__in=CAPTURED_STATES) & Q(amount_captured__gt=0))
                | (~Q(status__in=CAPTURED_STATES) & Q(amount_captured=0)),
                name="txn_captured_iff_captured_state",
            ),
            models.CheckConstraint(
                condition=~Q(status=S.REFUNDED) | Q(amount_refunded=F("amount_captured")),
                name="txn_refunded_means_fully_refunded",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_final(self) -> bool:
        return self.status not in INFLIGHT_STATES

    @property
    def amount_refundable(self) -> int:
        """What a new refund may still take: captured, minus refunds succeeded or in flight,
        minus funds already withdrawn by chargebacks."""
        return max(0, self.amount_captured - self.amount_refund_reserved - self.amount_disputed)

    # --- transitions (pure) ---------------------------------------------------------
    @transition(field=status, source=S.PENDING, target=S.PROCESSING)
    def start_processing(self, *, gateway: str, now) -> None:
        self.gateway = gateway
        self.processing_started_at = now

    @transition(field=status, source=S.PROCESSING, target=S.COMPLETED)
    def mark_completed(self, *, reference: str, amount_captured: int, now) -> None:
        self.gateway_reference = reference
        self.amount_captured = amount_captured
        self.next_action = None
        self.finalized_at = now

    @transition(field=status, source=S.PROCESSING, target=S.AUTHORIZED)
    def mark_authorized(self, *, reference: str, now) -> None:
        self.gateway_reference = reference
        self.next_action = None
        self.finalized_at = now

    @transition(field=status, source=S.PROCESSING, target=S.FAILED)
    def mark_failed(self, *, code: str, message: str, reference: str | None, now) -> None:
        self.failure_code = code
        self.failure_message = message[:500]
        if reference:
            self.gateway_reference = reference
        self.finalized_at = now

    @transition(field=status, source=S.PROCESSING, target=S.REQUIRES_ACTION)
    def mark_requires_action(self, *, reference: str, next_action: dict) -> None:
        self.gateway_reference = reference
        self.next_action = next_action

    @transition(field=status, source=S.REQUIRES_ACTION, target=S.PROCESSING)
    def resume_processing(self) -> None:
        self.next_action = None

    @transition(field=status, source=S.AUTHORIZED, target=S.COMPLETED)
    def capture(self, *, amount: int, now) -> None:
        self.amount_captured = amount
        self.finalized_at = now

    @transition(field=status, source=[S.AUTHORIZED, S.REQUIRES_ACTION], target=S.CANCELED)
    def cancel(self, *, now) -> None:
        self.next_action = None
        self.finalized_at = now

    @transition(field=status, source=S.FAILED, target=S.COMPLETED)
    def recover_completed(self, *, reference: str, amount_captured: int, now) -> None:
        """The runbook's "resolve transactions that completed at gateway but failed in our
        system": only the manual resolution uses it, after asking the gateway (or forced
        with a reason), and it is audited there."""
        self.gateway_reference = reference
        self.amount_captured = amount_captured
        self.failure_code = ""
        self.failure_message = ""
        self.finalized_at = now

    @transition(
        field=status, source=[S.COMPLETED, S.PARTIALLY_REFUNDED],
        target=RETURN_VALUE(S.PARTIALLY_REFUNDED, S.REFUNDED),
    )
    def apply_refund(self, *, amount: int) -> str:
        """A refund succeeded (its amount was reserved when it was created)."""
        self.amount_refunded += amount
        return S.REFUNDED if self.amount_refunded >= self.amount_captured else S.PARTIALLY_REFUNDED

    def record_funds_withdrawn(self, *, amount: int) -> None:
        """A chargeback was lost or accepted: the funds went back to the cardholder. Not a
        status transition: a disputed payment keeps its (refund) status."""
        self.amount_disputed += amount
        self.disputed = True


class AttemptOutcome(models.TextChoices):
    STARTED = "started"  # sent; no answer recorded yet
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    REQUIRES_ACTION = "requires_action"
    ERROR = "error"  # the gateway answered with an error; nothing happened there
    UNKNOWN = "unknown"  # timeout or lost response: ask the gateway later


ATTEMPT_OUTCOMES = list(AttemptOutcome)


class PaymentAttempt(models.Model):
    """One row per call to a gateway on behalf of a transaction (authorize, capture, void).

    The idempotency key sent to the gateway is derived from the transaction and the
    attempt (an authorization under a merchant's Idempotency-Key: from that key and the
    attempt, payments.services.gateway_keys), so a retry of the same attempt can never
    charge twice at the gateway.
    """

    class Operation(models.TextChoices):
        AUTHORIZE = "authorize"
        CAPTURE = "capture"
        VOID = "void"

    Outcome = AttemptOutcome

    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    operation = models.CharField(max_length=10, choices=Operation.choices)
    gateway = models.CharField(max_length=20)
    idempotency_key = models.CharField(max_length=255, unique=True)
    amount = models.BigIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.STARTED)
    gateway_reference = models.CharField(max_length=255, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["transaction_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["transaction", "number"], name="attempt_unique_number"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="attempt_amount_positive"),
            models.CheckConstraint(condition=Q(outcome__in=[o.value for o in ATTEMPT_OUTCOMES]), name="attempt_outcome_valid"),
        ]
        # The stuck checker's look-up of calls whose answer is missing or not yet in (few rows
        # at any time).
        indexes = [models.Index(fields=["started_at"], condition=Q(outcome__in=["started", "unknown"]), name="attempt_unanswered_idx")]

    def __str__(self) -> str:
        return f"{self.transaction_id}#{self.number} {self.operation} {self.outcome}"
