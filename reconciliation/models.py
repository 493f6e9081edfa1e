"""Reconciliation runs and the discrepancies they find.

A ReconciliationRun is one reconciliation of a gateway's settlement day (gateway, date,
attempt): the counts per category and the totals. It is written, with its items, in one
database transaction at the end of the run, so a run that failed left nothing behind.

A ReconciliationItem is one discrepancy, unique on (gateway, local reference, gateway
reference, category): a re-run of the day updates the items it finds again and never
duplicates them. Its state machine:

    open → investigating → resolved | ignored        (open → resolved | ignored directly too)

- resolved with a resolution (`create_local_record`, `force_match`, `timing`,
  `ledger_adjustment`) and ignored (`ignore`) always carry a reason and who decided;
- a ledger adjustment is four-eyes: it is requested (`request_ledger_adjustment`: the item
  is `investigating` with a pending resolution) and resolved only when a second finance or
  admin user approves it (`approve_ledger_adjustment`), which posts it to the ledger; a CHECK
  constraint refuses an approver who is the requester;
- an item a later run no longer finds is cleared by the system (`clear`: resolved, `timing`,
  auto_cleared) and reopened if a run finds it again (`reopen`, only for cleared items: a
  person's decision is never undone by a run).

Transitions are pure: the services lock, transition, save and audit.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django_fsm import FSMField, FSMModelMixin, transition

from core.models import TimeStampedModel, new_public_id


class Category(models.TextChoices):
    MATCHED = "matched"
    MISSING_AT_GATEWAY = "missing_at_gateway"  # FlowPay settled it, the gateway has no row (after the settlement delay)
    MISSING_LOCALLY = "missing_locally"  # the gateway moved money FlowPay knows nothing of
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    STATUS_MISMATCH = "status_mismatch"  # e.g. refunded at the gateway, not in FlowPay
    FEE_MISMATCH = "fee_mismatch"  # the gateway's fee is not the one the ledger recorded
    DUPLICATE_AT_GATEWAY = "duplicate_at_gateway"


DISCREPANCY_CATEGORIES = [c for c in Category if c != Category.MATCHED]


class ItemState(models.TextChoices):
    OPEN = "open"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"
    IGNORED = "ignored"


UNRESOLVED_STATES = [ItemState.OPEN, ItemState.INVESTIGATING]


class Resolution(models.TextChoices):
    LEDGER_ADJUSTMENT = "ledger_adjustment"  # book the difference in the ledger (four-eyes)
    CREATE_LOCAL_RECORD = "create_local_record"  # record in FlowPay the payment the gateway made
    FORCE_MATCH = "force_match"  # the two records are the same movement: accept the difference
    TIMING = "timing"  # it settles on another day
    IGNORE = "ignore"


RESOLVING = [Resolution.CREATE_LOCAL_RECORD, Resolution.FORCE_MATCH, Resolution.TIMING, Resolution.LEDGER_ADJUSTMENT]


class RunSource(models.TextChoices):
    API = "api"  # the gateway's API (Stripe balance transactions, PayPal Transaction Search, the simulator)
    FILE = "file"  # a report file in the gateway's own format (--file)


def _run_id() -> str:
    return new_public_id("recrun")


def _item_id() -> str:
    return new_public_id("recitem")


class ReconciliationRun(TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_run_id, editable=False)
    gateway = models.CharField(max_length=20)
    settlement_date = models.DateField()
    attempt = models.PositiveIntegerField()
    source = models.CharField(max_length=8, choices=RunSource.choices)
    source_name = models.CharField(max_length=500, blank=True)  # the file's name
    time_zone = models.CharField(max_length=64)
    window_start = models.DateTimeField()  # the day D, in time_zone
    window_end = models.DateTimeField()
    fetched_start = models.DateTimeField()  # D-1 … D+1: late rows still match
    fetched_end = models.DateTimeField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    gateway_rows = models.BigIntegerField(default=0)  # rows read (all of D-1 … D+1)
    local_records = models.BigIntegerField(default=0)  # FlowPay payments and refunds settled on D
    counts = models.JSONField(default=dict)  # category -> number of gateway rows / records
    totals = models.JSONField(default=dict)  # gross per side, currency and kind; the net difference
    awaiting_settlement = models.BigIntegerField(default=0)  # unmatched, younger than the settlement delay
    discrepancies = models.BigIntegerField(default=0)
    triggered_by = models.CharField(max_length=170)  # actor type:id

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["gateway", "-settlement_date"])]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "settlement_date", "attempt"], name="recrun_unique_attempt"),
            models.CheckConstraint(condition=Q(attempt__gte=1), name="recrun_attempt_positive"),
            models.CheckConstraint(condition=Q(source__in=RunSource.values), name="recrun_source_valid"),
            models.CheckConstraint(condition=Q(window_end__gt=F("window_start")), name="recrun_window_ordered"),
            models.CheckConstraint(condition=Q(discrepancies__gte=0) & Q(gateway_rows__gte=0) & Q(local_records__gte=0),
                                   name="recrun_counts_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.gateway} {self.settlement_date} #{self.attempt})"


class ReconciliationItem(FSMModelMixin, TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_item_id, editable=False)
    gateway = models.CharField(max_length=20)
    settlement_date = models.DateField()
    category = models.CharField(max_length=24, choices=Category.choices)
    state = FSMField(default=ItemState.OPEN, choices=ItemState.choices, protected=True, db_index=True)
    kind = models.CharField(max_length=32)  # charge, refund, dispute, ... (SettlementKind)
    # FlowPay's side: the public id of the payment, refund or chargeback ('' when missing locally).
    local_reference = models.CharField(max_length=40, blank=True)
    # The gateway's id of the payment, refund or dispute ('' when missing at the gateway).
    gateway_reference = models.CharField(max_length=255, blank=True)
    gateway_row_keys = models.JSONField(default=list, blank=True)  # the report rows behind it
    merchant = models.ForeignKey("accounts.Merchant", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    transaction = models.ForeignKey("payments.Transaction", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="reconciliation_items")
    # Signed effect on the balance, minor units (a refund is negative), per side; None: no record there.
    flowpay_amount = models.BigIntegerField(null=True, blank=True)
    flowpay_currency = models.CharField(max_length=3, blank=True)
    gateway_amount = models.BigIntegerField(null=True, blank=True)
    gateway_currency = models.CharField(max_length=3, blank=True)
    flowpay_fee = models.BigIntegerField(null=True, blank=True)
    gateway_fee = models.BigIntegerField(null=True, blank=True)
    # Field by field: [{"field": "amount", "flowpay": 1999, "gateway": 1899}, ...]
    diff = models.JSONField(default=list)
    first_run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="+")
    last_run = models.ForeignKey(ReconciliationRun, on_delete=models.PROTECT, related_name="items")
    occurrences = models.PositiveIntegerField(default=1)  # runs that found it
    note = models.CharField(max_length=500, blank=True)  # the investigator's

    resolution = models.CharField(max_length=24, choices=Resolution.choices, blank=True)
    resolution_reason = models.CharField(max_length=500, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    auto_cleared = models.BooleanField(default=False)  # resolved by a run that no longer found it
    ledger_reference = models.CharField(max_length=64, blank=True)  # the posted adjustment

    # A ledger adjustment awaiting its second approver (four-eyes).
    pending_resolution = models.CharField(max_length=24, choices=Resolution.choices, blank=True)
    pending_reason = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["gateway", "settlement_date", "state"]),
            models.Index(fields=["state", "category", "created_at"]),
        ]
        constraints = [
            # A re-run of the day finds the same discrepancy again: one item, updated.
            models.UniqueConstraint(fields=["gateway", "local_reference", "gateway_reference", "category"],
                                    name="recitem_unique_discrepancy"),
            models.CheckConstraint(condition=Q(category__in=[c.value for c in DISCREPANCY_CATEGORIES]),
                                   name="recitem_category_is_a_discrepancy"),
            models.CheckConstraint(condition=Q(state__in=ItemState.values), name="recitem_state_valid"),
            models.CheckConstraint(condition=~Q(local_reference="", gateway_reference=""), name="recitem_has_a_side"),
            # A decision always says what and why, and who (a person, or a run that cleared it).
            models.CheckConstraint(
                condition=~Q(state=ItemState.RESOLVED)
                | (Q(resolution__in=[r.value for r in RESOLVING]) & ~Q(resolution_reason="") & Q(resolved_at__isnull=False)
                   & (Q(resolved_by__isnull=False) | Q(auto_cleared=True))),
                name="recitem_resolved_has_resolution",
            ),
            models.CheckConstraint(
                condition=~Q(state=ItemState.IGNORED)
                | (Q(resolution=Resolution.IGNORE) & ~Q(resolution_reason="") & Q(resolved_by__isnull=False)),
                name="recitem_ignored_has_reason",
            ),
            models.CheckConstraint(condition=Q(state__in=UNRESOLVED_STATES) | Q(pending_resolution=""),
                                   name="recitem_pending_only_while_unresolved"),
            # Four-eyes: a ledger adjustment is resolved only with an approver other than its requester.
            models.CheckConstraint(
                condition=~Q(resolution=Resolution.LEDGER_ADJUSTMENT)
                | (Q(requested_by__isnull=False) & Q(approved_by__isnull=False) & ~Q(approved_by=F("requested_by"))
                   & ~Q(ledger_reference="")),
                name="recitem_ledger_adjustment_four_eyes",
            ),
            models.CheckConstraint(condition=Q(pending_resolution="") | Q(requested_by__isnull=False),
                                   name="recitem_pending_has_requester"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def amount_difference(self) -> int:
        """gateway − FlowPay, the item's share of the day's net difference (same currency)."""
        return (self.gateway_amount or 0) - (self.flowpay_amount or 0)

    # --- transitions (pure) ---------------------------------------------------------
    @transition(field=state, source=ItemState.OPEN, target=ItemState.INVESTIGATING)
    def investigate(self, *, note: str) -> None:
        self.note = note[:500]

    @transition(field=state, source=UNRESOLVED_STATES, target=ItemState.RESOLVED)
    def resolve(self, *, resolution: str, reason: str, user, now) -> None:
        self._decide(resolution=resolution, reason=reason, user=user, now=now)

    @transition(field=state, source=UNRESOLVED_STATES, target=ItemState.IGNORED)
    def ignore(self, *, reason: str, user, now) -> None:
        self._decide(resolution=Resolution.IGNORE, reason=reason, user=user, now=now)

    @transition(field=state, source=UNRESOLVED_STATES, target=ItemState.INVESTIGATING,
                conditions=[lambda item: not item.pending_resolution])
    def request_ledger_adjustment(self, *, reason: str, user, now) -> None:
        self.pending_resolution = Resolution.LEDGER_ADJUSTMENT
        self.pending_reason = reason[:500]
        self.requested_by = user
        self.requested_at = now

    @transition(field=state, source=ItemState.INVESTIGATING, target=ItemState.RESOLVED,
                conditions=[lambda item: item.pending_resolution == Resolution.LEDGER_ADJUSTMENT])
    def approve_ledger_adjustment(self, *, user, ledger_reference: str, now) -> None:
        self.approved_by = user
        self.approved_at = now
        self.ledger_reference = ledger_reference
        self._decide(resolution=Resolution.LEDGER_ADJUSTMENT, reason=self.pending_reason, user=user, now=now)

    @transition(field=state, source=ItemState.INVESTIGATING, target=ItemState.INVESTIGATING,
                conditions=[lambda item: bool(item.pending_resolution)])
    def reject_ledger_adjustment(self, *, reason: str) -> None:
        self.pending_resolution = ""
        self.pending_reason = ""
        self.requested_by = None
        self.requested_at = None
        self.note = f"ledger adjustment rejected: {reason}"[:500]

    @transition(field=state, source=UNRESOLVED_STATES, target=ItemState.RESOLVED)
    def clear(self, *, run_public_id: str, now) -> None:
        self.pending_resolution = ""
        self.pending_reason = ""
        self.resolution = Resolution.TIMING
        self.resolution_reason = f"no longer found by {run_public_id}"
        self.resolved_at = now
        self.auto_cleared = True

    @transition(field=state, source=ItemState.RESOLVED, target=ItemState.OPEN, conditions=[lambda item: item.auto_cleared])
    def reopen(self) -> None:
        self.resolution = ""
        self.resolution_reason = ""
        self.resolved_at = None
        self.auto_cleared = False

    def _decide(self, *, resolution: str, reason: str, user, now) -> None:
        self.pending_resolution = ""
        self.pending_reason = ""
        self.resolution = resolution
        self.resolution_reason = reason[:500]
        self.resolved_by = user
        self.resolved_at = now
