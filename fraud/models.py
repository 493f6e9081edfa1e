"""Fraud screening's state: rules and their versions, list items, the decision recorded for
each screened payment, and the review queue.

Rules of the data:
- A rule is a stable id with versions. A change (text, mode, description) or a disable
  adds a version; versions are never changed or deleted (a database trigger refuses it),
  so every decision can name the exact rule text that matched it.
- A merchant's rules and lists belong to one mode (live or test), as every merchant object
  does; platform rules (merchant NULL) apply to every merchant in both modes.
- A decision is written once per screened payment (one per transaction) and never changed
  (a trigger refuses UPDATE): the signals it saw, the rules that matched, the score and why.
- A review is open for a payment screening held; approve and reject claim it first (a
  lease), so two reviewers at once never both act: one wins, the other gets 409.
"""

from django.db import models
from django.db.models import Q
from django_fsm import FSMField, FSMModelMixin, transition

from core.models import TimeStampedModel, new_public_id
from fraud.screening.language.ast import Action
from fraud.screening.language.attributes import LISTS


class RuleMode(models.TextChoices):
    ACTIVE = "active"  # evaluated and acted on
    SHADOW = "shadow"  # evaluated and recorded, never acted on (test before enabling)
    DISABLED = "disabled"  # not evaluated


class RiskLevel(models.TextChoices):
    NORMAL = "normal"
    ELEVATED = "elevated"
    HIGHEST = "highest"
    NOT_ASSESSED = "not_assessed"  # no score: simplified flow, or the counters out of reach


ACTIONS = [(action.value, action.value) for action in Action]
# The API's choice sets (value = label, as its serializers spell them; the OpenAPI schema
# names them through ENUM_NAME_OVERRIDES). Screening evaluates active and shadow rules.
RULE_MODE_CHOICES = [(mode, mode) for mode in RuleMode.values]
EVALUATED_MODE_CHOICES = [(RuleMode.ACTIVE.value, "active"), (RuleMode.SHADOW.value, "shadow")]
LIST_NAMES = [(name, name) for name in sorted(LISTS)]


def _rule_id() -> str:
    return new_public_id("rule")


def _list_item_id() -> str:
    return new_public_id("rsli")


def _decision_id() -> str:
    return new_public_id("frd")


def _review_id() -> str:
    return new_public_id("prv")


class Rule(TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_rule_id, editable=False)
    # NULL: a platform rule, applied to every merchant in both modes.
    merchant = models.ForeignKey("accounts.Merchant", null=True, blank=True, on_delete=models.PROTECT, related_name="fraud_rules")
    livemode = models.BooleanField(null=True, blank=True)
    # The rules FlowPay ships (block lists, the score thresholds) carry a name, so that a
    # migration can find them again; merchants' rules have none.
    platform_key = models.CharField(max_length=40, null=True, blank=True, unique=True)
    current_version = models.OneToOneField(
        "fraud.RuleVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="current_of"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["merchant", "livemode"])]
        constraints = [
            # A merchant's rule has the mode of the key that made it; a platform rule, none.
            models.CheckConstraint(
                condition=(Q(merchant__isnull=True) & Q(livemode__isnull=True))
                | (Q(merchant__isnull=False) & Q(livemode__isnull=False)),
                name="fraud_rule_mode_iff_merchant",
            ),
            models.CheckConstraint(condition=Q(platform_key__isnull=True) | Q(merchant__isnull=True),
                                   name="fraud_rule_platform_key_only_platform"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_platform(self) -> bool:
        return self.merchant_id is None


class RuleVersion(models.Model):
    """One immutable version of a rule (a database trigger refuses UPDATE and DELETE)."""

    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.CharField(max_length=1000)  # the rule as written: `block if :amount: > 500000`
    action = models.CharField(max_length=16, choices=ACTIONS)
    mode = models.CharField(max_length=16, choices=RuleMode.choices)
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150)  # the actor (API key prefix, staff username)

    class Meta:
        ordering = ["rule_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "number"], name="fraud_rule_version_unique_number"),
            models.CheckConstraint(condition=Q(action__in=[a.value for a in Action]), name="fraud_rule_version_action_valid"),
            models.CheckConstraint(condition=Q(mode__in=RuleMode.values), name="fraud_rule_version_mode_valid"),
            models.CheckConstraint(condition=Q(number__gte=1), name="fraud_rule_version_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} v{self.number}"


class ListItem(TimeStampedModel):
    """A value on one of a merchant's allow or block lists (`@blocked_emails`, …), with why
    and until when. Removed items are kept (removed_at) for the history of decisions."""

    public_id = models.CharField(max_length=40, unique=True, default=_list_item_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="fraud_list_items")
    livemode = models.BooleanField(default=False)
    list = models.CharField(max_length=40, choices=LIST_NAMES)
    value = models.CharField(max_length=255)  # normalised for its list's kind (fraud.screening.lists)
    reason = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The screening look-up: this merchant's items holding any of the payment's values.
            models.Index(fields=["merchant", "livemode", "value"], condition=Q(removed_at__isnull=True),
                         name="fraud_list_item_lookup"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "livemode", "list", "value"], condition=Q(removed_at__isnull=True),
                                    name="fraud_list_item_unique_present"),
            models.CheckConstraint(condition=Q(list__in=sorted(LISTS)), name="fraud_list_item_list_valid"),
            models.CheckConstraint(condition=Q(removed_at__isnull=True) | ~Q(removed_by=""),
                                   name="fraud_list_item_removed_by_someone"),
        ]

    def __str__(self) -> str:
        return f"{self.list}: {self.value}"


class Decision(models.Model):
    """What screening decided about one payment, and why (written once, never changed)."""

    public_id = models.CharField(max_length=40, unique=True, default=_decision_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="fraud_decisions")
    livemode = models.BooleanField(default=False)
    # A reference by label, not an import: screening sits below payments (import-linter's
    # layers), and payments renders `risk` through the reverse relation.
    transaction = models.OneToOneField("payments.Transaction", on_delete=models.PROTECT, related_name="fraud_decision")
    outcome = models.CharField(max_length=16, choices=ACTIONS)
    three_d_secure = models.BooleanField(default=False)  # a request_3ds rule matched
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    level = models.CharField(max_length=16, choices=RiskLevel.choices)
    reasons = models.JSONField(default=list)  # [{"signal", "points", "detail"}]: how the score was made
    signals = models.JSONField(default=dict)  # every signal, by attribute name (the backtest reads these)
    rules = models.JSONField(default=list)  # the active rules that matched: rule, version, action, predicate
    shadow_rules = models.JSONField(default=list)  # the shadow rules that matched (never acted on)
    simplified = models.BooleanField(default=False)  # simplified flow: no velocity, no score
    degraded = models.BooleanField(default=False)  # the counters were out of reach
    degraded_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["merchant", "livemode", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(outcome__in=[a.value for a in Action]), name="fraud_decision_outcome_valid"),
            models.CheckConstraint(condition=Q(level__in=RiskLevel.values), name="fraud_decision_level_valid"),
            models.CheckConstraint(condition=Q(score__isnull=True) | Q(score__lte=100), name="fraud_decision_score_range"),
            # A score exactly when one was assessed; its level follows Radar's thresholds.
            models.CheckConstraint(
                condition=(Q(score__isnull=True) & Q(level=RiskLevel.NOT_ASSESSED))
                | (Q(score__lt=65) & Q(level=RiskLevel.NORMAL))
                | (Q(score__gte=65) & Q(score__lt=75) & Q(level=RiskLevel.ELEVATED))
                | (Q(score__gte=75) & Q(level=RiskLevel.HIGHEST)),
                name="fraud_decision_level_of_score",
            ),
            models.CheckConstraint(condition=Q(degraded=False) | ~Q(degraded_reason=""), name="fraud_decision_degraded_says_why"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.outcome}"


class ReviewStatus(models.TextChoices):
    OPEN = "open"
    APPROVING = "approving"  # claimed by a reviewer's approve: the capture is under way
    REJECTING = "rejecting"  # claimed by a reviewer's reject: the cancel or refund is under way
    APPROVED = "approved"
    REJECTED = "rejected"


CLAIMED_STATES = [ReviewStatus.APPROVING, ReviewStatus.REJECTING]
CLOSED_STATES = [ReviewStatus.APPROVED, ReviewStatus.REJECTED]


class Review(FSMModelMixin, TimeStampedModel):
    """A payment screening held (authorized, not captured) until a reviewer decides.

    open → approving → approved (captured, or already captured)
    open → rejecting → rejected (canceled, or refunded when it was captured)
    approving | rejecting → open (the capture, cancel or refund did not happen)
    A claim lasts FLOWPAY_FRAUD_REVIEW_CLAIM_SECONDS: an expired one may be taken over.
    """

    S = ReviewStatus

    public_id = models.CharField(max_length=40, unique=True, default=_review_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="fraud_reviews")
    livemode = models.BooleanField(default=False)
    transaction = models.OneToOneField("payments.Transaction", on_delete=models.PROTECT, related_name="fraud_review")
    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="review")
    status = FSMField(default=ReviewStatus.OPEN, choices=ReviewStatus.choices, protected=True, db_index=True)
    claimed_by = models.CharField(max_length=150, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by_type = models.CharField(max_length=16, blank=True)  # the reviewer's actor type
    closed_by = models.CharField(max_length=150, blank=True)  # and id
    note = models.CharField(max_length=500, blank=True)  # the reviewer's reason
    # What the decision did to the payment: captured, already_captured, canceled, refunded,
    # refund_requested, already_closed.
    result = models.CharField(max_length=32, blank=True)
    refund_public_id = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["merchant", "livemode", "status", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ReviewStatus.values), name="fraud_review_status_valid"),
            models.CheckConstraint(
                condition=(Q(status__in=CLAIMED_STATES) & Q(claim_expires_at__isnull=False) & ~Q(claimed_by=""))
                | (~Q(status__in=CLAIMED_STATES) & Q(claim_expires_at__isnull=True)),
                name="fraud_review_claim_iff_claimed",
            ),
            # A closed review says who closed it, when, and what it did.
            models.CheckConstraint(
                condition=(Q(status__in=CLOSED_STATES) & Q(closed_at__isnull=False) & ~Q(closed_by="") & ~Q(result=""))
                | (~Q(status__in=CLOSED_STATES) & Q(closed_at__isnull=True)),
                name="fraud_review_closed_iff_decided",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id

    # --- transitions (pure) ---------------------------------------------------------
    @transition(field=status, source=[ReviewStatus.OPEN, *CLAIMED_STATES], target=ReviewStatus.APPROVING)
    def claim_approve(self, *, by: str, until) -> None:
        """From a claimed state only when that claim expired (the service checks)."""
        self.claimed_by, self.claim_expires_at = by, until

    @transition(field=status, source=[ReviewStatus.OPEN, *CLAIMED_STATES], target=ReviewStatus.REJECTING)
    def claim_reject(self, *, by: str, until) -> None:
        self.claimed_by, self.claim_expires_at = by, until

    @transition(field=status, source=CLAIMED_STATES, target=ReviewStatus.OPEN)
    def release(self) -> None:
        self.claimed_by, self.claim_expires_at = "", None

    @transition(field=status, source=ReviewStatus.APPROVING, target=ReviewStatus.APPROVED)
    def mark_approved(self, *, by_type: str, by: str, note: str, result: str, now) -> None:
        self._close(by_type=by_type, by=by, note=note, result=result, now=now)

    @transition(field=status, source=ReviewStatus.REJECTING, target=ReviewStatus.REJECTED)
    def mark_rejected(self, *, by_type: str, by: str, note: str, result: str, now, refund_public_id: str = "") -> None:
        self._close(by_type=by_type, by=by, note=note, result=result, now=now)
        self.refund_public_id = refund_public_id

    def _close(self, *, by_type: str, by: str, note: str, result: str, now) -> None:
        self.claimed_by, self.claim_expires_at = "", None
        self.closed_at, self.closed_by_type, self.closed_by = now, by_type, by
        self.note, self.result = note[:500], result
