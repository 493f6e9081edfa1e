"""Plans, subscriptions, invoices, rebill jobs and their charges.

Subscription:
    incomplete → active (first invoice paid) | canceled (first invoice never paid)
    trialing → active (trial over: the first paid period starts)
    active → past_due (a renewal charge failed) → active (a retry succeeded) | unpaid | canceled
    active ↔ paused;  any → canceled
  `incomplete` is Stripe's name for "created, first invoice not paid yet": a subscription
  without a trial is `active` only once its first invoice is paid.

Invoice:   draft → open → paid | uncollectible | void

Rebill job (one per subscription and period, kept through the invoice's dunning retries):
    queued → leased → succeeded | failed | dead | queued (lease reaped, non-payment error retry)
    failed → queued (dunning retry due);  dead → queued (operator re-queue)
  `failed` means "the last charge was declined": a retry is scheduled (run_at) unless the
  dunning is over (invoice uncollectible). `dead` is the dead-letter state of jobs that
  failed for non-payment reasons (exceptions, bad data) FLOWPAY_REBILL_MAX_ATTEMPTS times.

Billing periods are computed from the subscription's billing anchor (UTC):
period n = [anchor + n·interval, anchor + (n+1)·interval), with dateutil.relativedelta, so
month ends stay month ends (Jan 31 → Feb 29 → Mar 31) and never drift.

Transitions are pure: services lock, transition, save, audit and publish outbox events.
"""

import datetime as dt

from dateutil.relativedelta import relativedelta
from django.db import models
from django.db.models import Q
from django_fsm import FSMField, FSMModelMixin, transition

from core.models import TimeStampedModel, new_public_id
from core.money import MAX_AMOUNT

MAX_INTERVAL_COUNT = 1095  # 3 years of days; the API narrows it per interval
MAX_TRIAL_DAYS = 730


class Interval(models.TextChoices):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


# The Celery queue of each billing frequency.
QUEUE_FOR_INTERVAL = {
    Interval.DAY: "rebill.daily",
    Interval.WEEK: "rebill.weekly",
    Interval.MONTH: "rebill.monthly",
    Interval.YEAR: "rebill.yearly",
}
REBILL_QUEUES = list(QUEUE_FOR_INTERVAL.values())


def interval_delta(interval: str, count: int, n: int = 1) -> relativedelta:
    """n billing intervals (of `count` days/weeks/months/years) as a calendar delta."""
    k = count * n
    return {
        Interval.DAY: relativedelta(days=k),
        Interval.WEEK: relativedelta(weeks=k),
        Interval.MONTH: relativedelta(months=k),
        Interval.YEAR: relativedelta(years=k),
    }[interval]


def _plan_id() -> str:
    return new_public_id("plan")


def _subscription_id() -> str:
    return new_public_id("sub")


def _invoice_id() -> str:
    return new_public_id("inv")


def _job_id() -> str:
    return new_public_id("rbj")


class Plan(TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_plan_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="plans")
    livemode = models.BooleanField(default=False)  # the creating API key's environment
    name = models.CharField(max_length=200)
    amount = models.BigIntegerField()  # minor units of `currency`, per interval
    currency = models.CharField(max_length=3)
    interval = models.CharField(max_length=5, choices=Interval.choices)
    interval_count = models.PositiveIntegerField(default=1)
    trial_days = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The Idempotency-Key use that created it: a request re-run under the same key after a
    # crash finds this plan instead of creating another.
    idempotency_record = models.OneToOneField(
        "core.IdempotencyRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="plan"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["merchant", "-created_at", "-id"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(amount__lte=MAX_AMOUNT), name="plan_amount_in_range"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="plan_currency_iso4217"),
            models.CheckConstraint(condition=Q(interval__in=Interval.values), name="plan_interval_valid"),
            models.CheckConstraint(
                condition=Q(interval_count__gte=1) & Q(interval_count__lte=MAX_INTERVAL_COUNT), name="plan_interval_count_in_range"
            ),
            models.CheckConstraint(condition=Q(trial_days__lte=MAX_TRIAL_DAYS), name="plan_trial_days_in_range"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    @property
    def queue(self) -> str:
        return QUEUE_FOR_INTERVAL[self.interval]


class DunningFinalAction(models.TextChoices):
    UNPAID = "unpaid"
    CANCELED = "canceled"


class SubscriptionSettings(TimeStampedModel):
    """Per-merchant subscription settings. A merchant without a row uses the defaults."""

    merchant = models.OneToOneField("accounts.Merchant", on_delete=models.PROTECT, related_name="subscription_settings")
    # What a subscription becomes when the last dunning retry of an invoice fails.
    dunning_final_action = models.CharField(
        max_length=10, choices=DunningFinalAction.choices, default=DunningFinalAction.UNPAID
    )

    class Meta:
        verbose_name_plural = "subscription settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(dunning_final_action__in=DunningFinalAction.values), name="subsettings_final_action_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"subscription settings of merchant {self.merchant_id}"


class SubscriptionStatus(models.TextChoices):
    INCOMPLETE = "incomplete"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    PAUSED = "paused"
    CANCELED = "canceled"


SS = SubscriptionStatus
# Subscriptions the scheduler bills when their next period starts.
BILLED_STATES = [SS.TRIALING, SS.ACTIVE, SS.PAST_DUE]


class Subscription(FSMModelMixin, TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_subscription_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="subscriptions")
    customer = models.ForeignKey("payments.Customer", on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    # What the merchant sent (a gateway test token or a saved method's pm_… id); charges use it.
    payment_method = models.CharField(max_length=255)
    saved_payment_method = models.ForeignKey(
        "payments.PaymentMethod", null=True, blank=True, on_delete=models.PROTECT, related_name="subscriptions"
    )
    status = FSMField(default=SS.INCOMPLETE, choices=SS.choices, protected=True, db_index=True)
    livemode = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)

    # Periods: n-th period = [billing_anchor + n·interval, billing_anchor + (n+1)·interval).
    billing_anchor = models.DateTimeField()
    next_period_index = models.PositiveIntegerField(default=0)  # the next period to invoice
    next_billing_at = models.DateTimeField(null=True, blank=True)  # start of that period; None: not billed
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    trial_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)

    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.CharField(max_length=64, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # The Idempotency-Key use that created it: a request re-run under the same key after a
    # crash finds this subscription (and its first invoice's charge) instead of creating another.
    idempotency_record = models.OneToOneField(
        "core.IdempotencyRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="subscription"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"]),
            # The scheduler's query: billed subscriptions whose next period has started.
            models.Index(fields=["next_billing_at"], condition=Q(status__in=BILLED_STATES), name="sub_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=SS.values), name="sub_status_valid"),
            models.CheckConstraint(condition=Q(current_period_end__gt=models.F("current_period_start")), name="sub_period_ordered"),
            models.CheckConstraint(
                condition=Q(trial_end__isnull=True) | Q(trial_start__isnull=False, trial_end__gt=models.F("trial_start")),
                name="sub_trial_ordered",
            ),
            models.CheckConstraint(
                condition=~Q(status=SS.CANCELED) | Q(canceled_at__isnull=False, ended_at__isnull=False),
                name="sub_canceled_has_dates",
            ),
            models.CheckConstraint(condition=~Q(status=SS.PAUSED) | Q(paused_at__isnull=False), name="sub_paused_has_date"),
        ]

    def __str__(self) -> str:
        return self.public_id

    # --- periods (pure) -------------------------------------------------------------
    def period_bounds(self, index: int) -> tuple[dt.datetime, dt.datetime]:
        """Always computed from the anchor, never from the previous period's end: adding a
        month to Feb 29 would give Mar 29 and drift from a Jan 31 anchor for ever."""
        plan = self.plan
        start = self.billing_anchor + interval_delta(plan.interval, plan.interval_count, index)
        end = self.billing_anchor + interval_delta(plan.interval, plan.interval_count, index + 1)
        return start, end

    def advance_period(self) -> tuple[dt.datetime, dt.datetime]:
        """The period `next_period_index` is being invoiced: make it current and point
        next_billing_at at the following one. Returns the invoiced period."""
        start, end = self.period_bounds(self.next_period_index)
        self.current_period_start, self.current_period_end = start, end
        self.next_period_index += 1
        self.next_billing_at = end
        return start, end

    # --- transitions (pure) -----------------------------------------------------------
    @transition(field=status, source=[SS.INCOMPLETE, SS.PAST_DUE], target=SS.ACTIVE)
    def mark_paid(self) -> None:
        """An invoice was paid: the first one (incomplete) or a dunning retry (past_due)."""

    @transition(field=status, source=SS.TRIALING, target=SS.ACTIVE)
    def end_trial(self) -> None:
        """The trial is over: the first paid period starts (its invoice is created now)."""

    @transition(field=status, source=SS.ACTIVE, target=SS.PAST_DUE)
    def mark_past_due(self) -> None:
        pass

    @transition(field=status, source=SS.PAST_DUE, target=SS.UNPAID)
    def mark_unpaid(self, *, now: dt.datetime) -> None:
        self.next_billing_at = None  # no more invoices for an unpaid subscription

    @transition(field=status, source=SS.ACTIVE, target=SS.PAUSED)
    def pause(self, *, now: dt.datetime) -> None:
        self.paused_at = now

    @transition(field=status, source=SS.PAUSED, target=SS.ACTIVE)
    def resume(self, *, now: dt.datetime) -> None:
        """Billing continues unchanged when the paid period has not ended yet; otherwise a
        new billing cycle starts now (re-anchored) and is invoiced at once."""
        self.paused_at = None
        if now >= self.current_period_end:
            self.billing_anchor = now
            self.next_period_index = 0
            self.next_billing_at = now

    @transition(field=status, source=[SS.INCOMPLETE, SS.TRIALING, SS.ACTIVE, SS.PAST_DUE, SS.UNPAID, SS.PAUSED],
                target=SS.CANCELED)
    def cancel(self, *, now: dt.datetime, reason: str) -> None:
        self.canceled_at = self.canceled_at or now
        self.ended_at = now
        self.cancellation_reason = reason[:64]
        self.next_billing_at = None


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"


IS = InvoiceStatus


class Invoice(FSMModelMixin, TimeStampedModel):
    """One invoice per subscription period. `attempt_count` counts the charges sent for it
    (each under its own gateway idempotency key); `payment_failures` the declines, which
    drive dunning."""

    public_id = models.CharField(max_length=40, unique=True, default=_invoice_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="invoices")
    customer = models.ForeignKey("payments.Customer", on_delete=models.PROTECT, related_name="invoices")
    livemode = models.BooleanField(default=False)  # its subscription's mode
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = FSMField(default=IS.DRAFT, choices=IS.choices, protected=True, db_index=True)
    attempt_count = models.PositiveIntegerField(default=0)
    payment_failures = models.PositiveIntegerField(default=0)
    first_failed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_failure_code = models.CharField(max_length=64, blank=True)
    last_failure_message = models.CharField(max_length=500, blank=True)
    # A hard decline (closed account, lost card...): no retries with the same payment method.
    hard_declined_payment_method = models.CharField(max_length=255, blank=True)
    transaction = models.OneToOneField(
        "payments.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="invoice"
    )
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    marked_uncollectible_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "-created_at", "-id"]),
            models.Index(fields=["subscription", "-created_at", "-id"]),
        ]
        constraints = [
            # Exactly one invoice per subscription period, whatever the concurrency.
            models.UniqueConstraint(fields=["subscription", "period_start"], name="invoice_unique_period"),
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(amount__lte=MAX_AMOUNT), name="invoice_amount_in_range"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="invoice_currency_iso4217"),
            models.CheckConstraint(condition=Q(period_end__gt=models.F("period_start")), name="invoice_period_ordered"),
            models.CheckConstraint(condition=Q(status__in=IS.values), name="invoice_status_valid"),
            models.CheckConstraint(
                condition=(Q(status=IS.PAID) & Q(transaction__isnull=False) & Q(paid_at__isnull=False))
                | (~Q(status=IS.PAID) & Q(paid_at__isnull=True)),
                name="invoice_paid_iff_transaction",
            ),
            models.CheckConstraint(condition=Q(payment_failures__lte=models.F("attempt_count")), name="invoice_failures_within_attempts"),
        ]

    def __str__(self) -> str:
        return self.public_id

    # --- transitions (pure) -----------------------------------------------------------
    @transition(field=status, source=IS.DRAFT, target=IS.OPEN)
    def finalize(self, *, now: dt.datetime) -> None:
        self.finalized_at = now
        self.next_attempt_at = now

    @transition(field=status, source=IS.OPEN, target=IS.PAID)
    def mark_paid(self, *, transaction_id: int, now: dt.datetime) -> None:
        self.transaction_id = transaction_id
        self.paid_at = now
        self.next_attempt_at = None

    def record_payment_failure(self, *, code: str, message: str, now: dt.datetime, next_attempt_at, hard_payment_method: str) -> None:
        """A charge was declined (not a status transition: the invoice stays open)."""
        self.payment_failures += 1
        self.first_failed_at = self.first_failed_at or now
        self.last_failure_code = code[:64]
        self.last_failure_message = message[:500]
        self.next_attempt_at = next_attempt_at
        self.hard_declined_payment_method = hard_payment_method

    @transition(field=status, source=IS.OPEN, target=IS.UNCOLLECTIBLE)
    def mark_uncollectible(self, *, now: dt.datetime) -> None:
        self.marked_uncollectible_at = now
        self.next_attempt_at = None

    @transition(field=status, source=[IS.DRAFT, IS.OPEN], target=IS.VOID)
    def void(self, *, now: dt.datetime) -> None:
        self.voided_at = now
        self.next_attempt_at = None


class RebillJobStatus(models.TextChoices):
    QUEUED = "queued"
    LEASED = "leased"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"


JS = RebillJobStatus


class RebillJob(FSMModelMixin, TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_job_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="rebill_jobs")  # shard key
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="rebill_jobs")
    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="rebill_job")
    period_start = models.DateTimeField()
    queue = models.CharField(max_length=20)  # rebill.daily | weekly | monthly | yearly
    status = FSMField(default=JS.QUEUED, choices=JS.choices, protected=True, db_index=True)
    run_at = models.DateTimeField(null=True, blank=True)  # not before (dunning retry, error backoff)
    lease_owner = models.CharField(max_length=200, blank=True)
    leased_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    leases = models.PositiveIntegerField(default=0)  # times it was leased
    error_count = models.PositiveIntegerField(default=0)  # non-payment failures since the last re-queue by hand
    last_error = models.CharField(max_length=1000, blank=True)
    outcome = models.CharField(max_length=32, blank=True)  # paid, declined, uncollectible, skipped:<reason>, ...
    finished_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The lease query: one shard (queue, merchant), queued and due, oldest first.
            models.Index(fields=["queue", "merchant", "run_at", "id"], condition=Q(status="queued"), name="rebilljob_lease_idx"),
            models.Index(fields=["lease_expires_at"], condition=Q(status="leased"), name="rebilljob_leased_idx"),
            models.Index(fields=["run_at"], condition=Q(status="failed"), name="rebilljob_retry_idx"),
        ]
        constraints = [
            # One job per subscription period: re-running the scheduler never adds one.
            models.UniqueConstraint(fields=["subscription", "period_start"], name="rebilljob_unique_period"),
            models.CheckConstraint(condition=Q(status__in=JS.values), name="rebilljob_status_valid"),
            models.CheckConstraint(condition=Q(queue__in=REBILL_QUEUES), name="rebilljob_queue_valid"),
            # A leased job always has an owner and a lease expiry; other states have neither.
            models.CheckConstraint(
                condition=(Q(status=JS.LEASED) & ~Q(lease_owner="") & Q(lease_expires_at__isnull=False))
                | (~Q(status=JS.LEASED) & Q(lease_owner="") & Q(lease_expires_at__isnull=True)),
                name="rebilljob_lease_iff_leased",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    # --- transitions (pure) -----------------------------------------------------------
    @transition(field=status, source=JS.QUEUED, target=JS.LEASED)
    def lease(self, *, owner: str, now: dt.datetime, expires_at: dt.datetime) -> None:
        self.lease_owner = owner[:200]
        self.leased_at = now
        self.heartbeat_at = now
        self.lease_expires_at = expires_at
        self.leases += 1

    def _release(self) -> None:
        self.lease_owner = ""
        self.lease_expires_at = None

    @transition(field=status, source=JS.LEASED, target=JS.SUCCEEDED)
    def mark_succeeded(self, *, now: dt.datetime, outcome: str) -> None:
        self._release()
        self.outcome = outcome[:32]
        self.finished_at = now
        self.run_at = None

    @transition(field=status, source=JS.LEASED, target=JS.FAILED)
    def mark_failed(self, *, now: dt.datetime, outcome: str, retry_at: dt.datetime | None) -> None:
        """The charge was declined: a dunning retry at `retry_at`, or none (dunning over)."""
        self._release()
        self.outcome = outcome[:32]
        self.run_at = retry_at
        self.finished_at = None if retry_at else now

    @transition(field=status, source=JS.FAILED, target=JS.QUEUED)
    def retry(self) -> None:
        """The dunning retry is due."""

    @transition(field=status, source=JS.LEASED, target=JS.QUEUED)
    def requeue_after_error(self, *, error: str, run_at: dt.datetime) -> None:
        """A non-payment error (or a stale lease): try again later."""
        self._release()
        self.error_count += 1
        self.last_error = error[:1000]
        self.run_at = run_at

    @transition(field=status, source=JS.LEASED, target=JS.DEAD)
    def mark_dead(self, *, error: str, now: dt.datetime) -> None:
        self._release()
        self.error_count += 1
        self.last_error = error[:1000]
        self.dead_at = now
        self.outcome = "dead"
        self.run_at = None

    @transition(field=status, source=JS.DEAD, target=JS.QUEUED)
    def requeue_dead(self, *, now: dt.datetime) -> None:
        """An operator re-queues a dead-lettered job (list_dead_rebills --requeue)."""
        self.error_count = 0
        self.dead_at = None
        self.outcome = ""
        self.run_at = now


class ChargeOutcome(models.TextChoices):
    PENDING = "pending"  # sent or about to be; outcome not recorded yet
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    ERROR = "error"  # nothing was charged (gateway unavailable, no record at the gateway, bad data)
    SKIPPED = "skipped"  # superseded before a transaction was created


class RebillCharge(models.Model):
    """One charge attempt for an invoice. Its gateway idempotency key is derived from
    (subscription, period, attempt number), and (invoice, number) is unique, so a job
    re-run after a crash finds the pending charge and its transaction instead of charging
    again; this row is the durable link (idempotency records are purged after 24 h)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="charges")
    job = models.ForeignKey(RebillJob, on_delete=models.PROTECT, related_name="charges")
    number = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=255, unique=True)
    payment_method = models.CharField(max_length=255)
    transaction = models.OneToOneField(
        "payments.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="rebill_charge"
    )
    outcome = models.CharField(max_length=16, choices=ChargeOutcome.choices, default=ChargeOutcome.PENDING)
    failure_code = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["invoice_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "number"], name="rebillcharge_unique_attempt"),
            # At most one charge in flight per invoice.
            models.UniqueConstraint(fields=["invoice"], condition=Q(outcome="pending"), name="rebillcharge_one_pending"),
            models.CheckConstraint(condition=Q(number__gte=1), name="rebillcharge_number_positive"),
            models.CheckConstraint(condition=Q(outcome__in=ChargeOutcome.values), name="rebillcharge_outcome_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id}#{self.number} {self.outcome}"
