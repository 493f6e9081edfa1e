"""Refunds and chargebacks, with their state machines.

Refund:
    requires_approval → pending (approve) | rejected (reject)        four-eyes, see below
    pending → processing → succeeded | failed;  failed → processing (retry)

    Four-eyes approval is modelled as a state *before* `pending`: a refund that takes what a
    support user (without the finance or admin role) refunds on the payment, or in its
    currency over 24 hours, beyond FLOWPAY_SUPPORT_REFUND_LIMIT or _DAILY_LIMIT
    (refunds.services.policy) is created in `requires_approval` and is neither executed nor
    queued until a finance or admin user other than the requester approves it. Its amount is reserved from
    the start, so refunds awaiting approval count against the captured amount too.

    Every refund holds a reservation on its transaction (Transaction.amount_refund_reserved)
    from creation until it fails or is rejected. A failed refund whose last gateway call timed
    out (`outcome_unknown`) keeps it: the gateway may have refunded, and a retry re-sends the
    same idempotency key to find out.

    One gateway call at a time: every attempt claims the refund first (`attempt_token`,
    `in_flight_until`, a lease longer than any gateway call) with a conditional UPDATE; a run
    that finds a live claim does not call the gateway, and only the holder of the current
    claim may record an error or a refusal. A claim that outlived its lease (the worker was
    killed) is taken over, re-sending the same key with the outcome treated as unknown. A
    success is never dropped, whoever reports it: money that left is recorded (a refund
    already failed is recovered). `key_sent_at` dates the key's first use: gateways forget
    idempotency keys (Stripe after 24 h), so an unknown-outcome refund whose key may have been
    forgotten is looked up at the gateway before anything is re-sent, or left failed for
    manual reconciliation when the gateway has no lookup.

    `refund_to_original_method=False` is an off-gateway credit (bank transfer, store credit)
    settled manually outside FlowPay: no gateway call is made; the refund is recorded as
    succeeded at once and counts against the captured amount like any other.

Chargeback:
    needs_response → under_review (evidence submitted) → won | lost
    needs_response → accepted
    needs_response → won | lost (the network decided without evidence: withdrawn by the
    cardholder, or the due date passed)

    Lost and accepted chargebacks withdraw the funds (recorded on the chargeback and in
    Transaction.amount_disputed, which marks the transaction disputed); a won one records
    them reinstated.

Transitions are pure: services lock, transition, save, audit and queue.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, FSMModelMixin, transition

from core.models import TimeStampedModel, new_public_id
from core.money import MAX_AMOUNT


class RefundStatus(models.TextChoices):
    REQUIRES_APPROVAL = "requires_approval"
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"


R = RefundStatus
# Refunds whose amount is always reserved against the transaction's captured amount.
RESERVING_STATES = [R.REQUIRES_APPROVAL, R.PENDING, R.PROCESSING, R.SUCCEEDED]


def _refund_id() -> str:
    return new_public_id("re")


class Refund(FSMModelMixin, TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_refund_id, editable=False)
    transaction = models.ForeignKey("payments.Transaction", on_delete=models.PROTECT, related_name="refunds")
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="refunds")
    livemode = models.BooleanField(default=False)  # its transaction's mode
    amount = models.BigIntegerField()  # minor units of `currency`
    currency = models.CharField(max_length=3)
    # Stored exactly as given (never trimmed or sanitised); always rendered escaped.
    reason = models.CharField(max_length=500, blank=True)
    refund_to_original_method = models.BooleanField(default=True)
    status = FSMField(default=R.PENDING, choices=R.choices, protected=True, db_index=True)

    # Who asked for it: actor type (api, staff, system, ...) and id (key prefix, username).
    initiated_by_type = models.CharField(max_length=16)
    initiated_by_id = models.CharField(max_length=150)
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    # Four-eyes approval.
    approval_required = models.BooleanField(default=False)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=500, blank=True)

    # Execution at the gateway.
    gateway = models.CharField(max_length=20, blank=True)
    gateway_reference = models.CharField(max_length=255, blank=True, db_index=True)
    # Bumped by a manual retry after a failure known to have refunded nothing, so the retry
    # reaches the gateway under a fresh idempotency key; never after an unknown outcome.
    key_generation = models.PositiveSmallIntegerField(default=1)
    attempts = models.PositiveIntegerField(default=0)  # gateway calls made
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    outcome_unknown = models.BooleanField(default=False)  # a gateway call timed out in this round
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    holds_reservation = models.BooleanField(default=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    # The claim of the attempt at the gateway right now (see the module docstring).
    attempt_token = models.CharField(max_length=32, blank=True, default="")
    in_flight_until = models.DateTimeField(null=True, blank=True)
    # When the current idempotency key was first sent (None: never sent).
    key_sent_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    # The Idempotency-Key use that created it: a crashed request re-run under the same key
    # finds this refund instead of refunding again.
    idempotency_record = models.OneToOneField(
        "core.IdempotencyRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="refund"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"]),
            models.Index(fields=["transaction", "-created_at"]),
            models.Index(fields=["status", "failed_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(amount__lte=MAX_AMOUNT), name="refund_amount_in_range"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="refund_currency_iso4217"),
            models.CheckConstraint(condition=Q(status__in=R.values), name="refund_status_valid"),
            # A refund counts against the captured amount in every state but failed/rejected.
            models.CheckConstraint(
                condition=~Q(status__in=RESERVING_STATES) | Q(holds_reservation=True), name="refund_reserving_states_hold",
            ),
            models.CheckConstraint(condition=~Q(status=R.REJECTED) | Q(holds_reservation=False), name="refund_rejected_releases"),
            # A failed refund of unknown outcome may have happened at the gateway: it keeps its reservation.
            models.CheckConstraint(
                condition=~Q(status=R.FAILED, outcome_unknown=True) | Q(holds_reservation=True),
                name="refund_unknown_outcome_holds",
            ),
            models.CheckConstraint(
                condition=~Q(status=R.REQUIRES_APPROVAL) | Q(approval_required=True), name="refund_awaiting_needs_approval",
            ),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | Q(approval_required=True), name="refund_approved_only_if_required",
            ),
            models.CheckConstraint(
                condition=~Q(status=R.SUCCEEDED) | Q(refund_to_original_method=False) | ~Q(gateway_reference=""),
                name="refund_gateway_success_has_reference",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def idempotency_key(self) -> str:
        """The key sent to the gateway: derived from the refund, so running it again (task
        redelivered, retried after a timeout) can never refund twice."""
        base = f"flowpay:{self.public_id}:refund"
        return base if self.key_generation == 1 else f"{base}:{self.key_generation}"

    @property
    def method(self) -> str:
        return "original_payment_method" if self.refund_to_original_method else "off_gateway_credit"

    # --- transitions (pure) ---------------------------------------------------------
    @transition(field=status, source=R.REQUIRES_APPROVAL, target=R.PENDING)
    def approve(self, *, user, now) -> None:
        self.approved_by = user
        self.approved_at = now

    @transition(field=status, source=R.REQUIRES_APPROVAL, target=R.REJECTED)
    def reject(self, *, user, reason: str, now) -> None:
        self.rejected_by = user
        self.rejected_at = now
        self.rejection_reason = reason[:500]
        self.holds_reservation = False

    @transition(field=status, source=R.PENDING, target=R.PROCESSING)
    def start_processing(self, *, gateway: str, now) -> None:
        self.gateway = gateway
        self.processing_started_at = now

    @transition(field=status, source=R.FAILED, target=R.PROCESSING)
    def retry(self, *, new_key: bool, now) -> None:
        """Back to processing; a fresh idempotency key only when the last round is known to
        have refunded nothing."""
        if new_key:
            self.key_generation += 1
            self.outcome_unknown = False
            self.key_sent_at = None
        self.holds_reservation = True
        self.next_retry_at = None
        self.failed_at = None
        self.processing_started_at = now

    @transition(field=status, source=R.PROCESSING, target=R.SUCCEEDED)
    def mark_succeeded(self, *, reference: str, now) -> None:
        self.gateway_reference = reference
        self.outcome_unknown = False
        self.next_retry_at = None
        self.failure_code = ""
        self.failure_message = ""
        self.succeeded_at = now
        self.end_claim()

    @transition(field=status, source=R.PROCESSING, target=R.FAILED)
    def mark_failed(self, *, code: str, message: str, now) -> None:
        self.failure_code = code[:64]
        self.failure_message = message[:500]
        self.next_retry_at = None
        self.failed_at = now
        # Releases the reservation unless the gateway may have refunded.
        self.holds_reservation = self.outcome_unknown
        self.end_claim()

    def record_attempt_error(self, *, code: str, message: str, unknown_outcome: bool, next_retry_at) -> None:
        """A gateway call of this round failed and will be retried (stays processing)."""
        self.failure_code = code[:64]
        self.failure_message = message[:500]
        self.outcome_unknown = self.outcome_unknown or unknown_outcome
        self.next_retry_at = next_retry_at
        self.end_claim()

    def end_claim(self) -> None:
        """The attempt in flight is over (its outcome is recorded)."""
        self.attempt_token = ""
        self.in_flight_until = None


class ChargebackStatus(models.TextChoices):
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"
    ACCEPTED = "accepted"


C = ChargebackStatus
OPEN_CHARGEBACK_STATES = [C.NEEDS_RESPONSE, C.UNDER_REVIEW]
CLOSED_CHARGEBACK_STATES = [C.WON, C.LOST, C.ACCEPTED]
# Chargebacks whose amount was (or may yet be) withdrawn from the payment.
NOT_WON_STATES = [C.NEEDS_RESPONSE, C.UNDER_REVIEW, C.LOST, C.ACCEPTED]


def _chargeback_id() -> str:
    return new_public_id("cb")


class Chargeback(FSMModelMixin, TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_chargeback_id, editable=False)
    transaction = models.ForeignKey("payments.Transaction", on_delete=models.PROTECT, related_name="chargebacks")
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="chargebacks")
    livemode = models.BooleanField(default=False)  # its transaction's mode
    # The card network's / acquirer's case reference (the runbook's "CB12345").
    chargeback_reference = models.CharField(max_length=255)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=500, blank=True)  # stored verbatim, rendered escaped
    status = FSMField(default=C.NEEDS_RESPONSE, choices=C.choices, protected=True, db_index=True)
    evidence_due_by = models.DateTimeField(db_index=True)
    # The gateway's dispute object when it came from the gateway (Stripe dp_…).
    gateway = models.CharField(max_length=20, blank=True)
    gateway_reference = models.CharField(max_length=255, blank=True, db_index=True)
    initiated_by_type = models.CharField(max_length=16)
    initiated_by_id = models.CharField(max_length=150)

    evidence_submitted_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # What a lost or accepted dispute took from the payment: at most its amount, less where it
    # covered money already refunded or being refunded (see amount_on_refunded_funds).
    amount_withdrawn = models.BigIntegerField(default=0)
    funds_withdrawn_at = models.DateTimeField(null=True, blank=True)
    amount_reinstated = models.BigIntegerField(default=0)
    funds_reinstated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"]),
            models.Index(fields=["status", "evidence_due_by"]),
        ]
        constraints = [
            # The same case reported twice (API retry, webhook redelivery) is one chargeback.
            models.UniqueConstraint(fields=["transaction", "chargeback_reference"], name="chargeback_unique_reference"),
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(amount__lte=MAX_AMOUNT), name="chargeback_amount_in_range"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="chargeback_currency_iso4217"),
            models.CheckConstraint(condition=Q(status__in=C.values), name="chargeback_status_valid"),
            models.CheckConstraint(condition=~Q(chargeback_reference=""), name="chargeback_reference_present"),
            # Funds move exactly once and only in the matching outcome.
            models.CheckConstraint(
                condition=(Q(status__in=[C.LOST, C.ACCEPTED]) & Q(amount_withdrawn__gte=0)
                           & Q(amount_withdrawn__lte=models.F("amount")) & Q(funds_withdrawn_at__isnull=False))
                | (~Q(status__in=[C.LOST, C.ACCEPTED]) & Q(amount_withdrawn=0) & Q(funds_withdrawn_at__isnull=True)),
                name="chargeback_withdrawn_iff_lost_or_accepted",
            ),
            models.CheckConstraint(
                condition=(Q(status=C.WON) & Q(amount_reinstated=models.F("amount")) & Q(funds_reinstated_at__isnull=False))
                | (~Q(status=C.WON) & Q(amount_reinstated=0) & Q(funds_reinstated_at__isnull=True)),
                name="chargeback_reinstated_iff_won",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_CHARGEBACK_STATES

    @property
    def amount_on_refunded_funds(self) -> int:
        """The part of a lost or accepted dispute that covered money already refunded (or being
        refunded) when the funds were withdrawn: the gateway decides the dispute, but FlowPay
        does not take that money out of its books a second time."""
        return self.amount - self.amount_withdrawn if self.status in (C.LOST, C.ACCEPTED) else 0

    # --- transitions (pure) ---------------------------------------------------------
    @transition(field=status, source=C.NEEDS_RESPONSE, target=C.UNDER_REVIEW)
    def submit_evidence(self, *, now) -> None:
        self.evidence_submitted_at = now

    @transition(field=status, source=C.NEEDS_RESPONSE, target=C.ACCEPTED)
    def accept(self, *, now, withdrawable: int) -> None:
        self.accepted_at = now
        self.closed_at = now
        self._withdraw_funds(now=now, withdrawable=withdrawable)

    @transition(field=status, source=[C.NEEDS_RESPONSE, C.UNDER_REVIEW], target=C.WON)
    def mark_won(self, *, now) -> None:
        self.closed_at = now
        self.amount_reinstated = self.amount
        self.funds_reinstated_at = now

    @transition(field=status, source=[C.NEEDS_RESPONSE, C.UNDER_REVIEW], target=C.LOST)
    def mark_lost(self, *, now, withdrawable: int) -> None:
        self.closed_at = now
        self._withdraw_funds(now=now, withdrawable=withdrawable)

    def _withdraw_funds(self, *, now, withdrawable: int) -> None:
        """`withdrawable` is what the payment still holds (captured, less refunds reserved or
        made and funds already withdrawn); the rest of the dispute covers refunded money."""
        self.amount_withdrawn = max(0, min(self.amount, withdrawable))
        self.funds_withdrawn_at = now


class ChargebackEvidence(models.Model):
    """Evidence submitted for a chargeback: free text and references to files kept
    elsewhere (document store ids or URLs; FlowPay stores no files). Append-only."""

    chargeback = models.ForeignKey(Chargeback, on_delete=models.PROTECT, related_name="evidence")
    text = models.TextField(blank=True)
    files = models.JSONField(default=list, blank=True)
    submitted_by_type = models.CharField(max_length=16)
    submitted_by_id = models.CharField(max_length=150)
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["chargeback_id", "id"]
        verbose_name_plural = "chargeback evidence"

    def __str__(self) -> str:
        return f"evidence for {self.chargeback_id}"
