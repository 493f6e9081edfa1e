"""How fraud objects are rendered (snake_case here; the camelCase renderer translates at the
edge): the `risk` of a transaction, rules with their versions, list items, reviews and
backtest results."""

from django.utils import timezone
from rest_framework import serializers

from core.representations import utc_iso
from fraud.models import Review

MATCH_FIELDS = ("rule", "version", "action", "predicate", "mode", "platform")
REASON_FIELDS = ("signal", "points", "detail")


def _review_of(decision) -> str | None:
    """The review (prv_…) of a payment held for review, looked up for those only and never
    from a cache: it is opened after the payment's first rendering."""
    if decision.outcome != "review":
        return None
    return Review.objects.filter(decision_id=decision.pk).values_list("public_id", flat=True).first()


def risk_payload(decision) -> dict:
    """A payment's `risk`, as RiskOutput renders it (the schema; a test keeps the two equal),
    built as a plain dict: it is rendered into every payment's JSON, twice in a create
    request, and DRF's nested serializers cost more than all of screening's evaluation."""
    return {
        "score": decision.score,
        "level": decision.level,
        "decision": decision.outcome,
        "three_d_secure": decision.three_d_secure,
        "rules": [{key: rule[key] for key in MATCH_FIELDS} for rule in decision.rules],
        "shadow_rules": [{key: rule[key] for key in MATCH_FIELDS} for rule in decision.shadow_rules],
        "reasons": [{key: reason[key] for key in REASON_FIELDS} for reason in decision.reasons],
        "simplified": decision.simplified,
        "degraded": decision.degraded,
        "review": _review_of(decision),
    }


class MatchedRuleOutput(serializers.Serializer):
    rule = serializers.CharField(help_text="The rule's id (rule_…).")
    version = serializers.IntegerField(help_text="The version that matched (a later change is a new version).")
    action = serializers.ChoiceField(choices=["allow", "block", "review", "request_3ds"])
    predicate = serializers.CharField(help_text="The rule as written in that version.")
    mode = serializers.ChoiceField(choices=["active", "shadow"])
    platform = serializers.BooleanField(help_text="A platform rule (FlowPay's), not the merchant's own.")


class RiskReasonOutput(serializers.Serializer):
    signal = serializers.CharField()
    points = serializers.IntegerField()
    detail = serializers.CharField()


class RiskOutput(serializers.Serializer):
    """What fraud screening decided about a payment, and why."""

    score = serializers.IntegerField(allow_null=True, min_value=0, max_value=100,
                                     help_text="0 to 100; null when not assessed (simplified flow, counters unavailable).")
    level = serializers.ChoiceField(choices=["normal", "elevated", "highest", "not_assessed"])
    decision = serializers.ChoiceField(choices=["allow", "block", "review", "request_3ds"], source="outcome")
    three_d_secure = serializers.BooleanField(help_text="A request_3ds rule matched: 3-D Secure was asked for.")
    rules = MatchedRuleOutput(many=True, help_text="The active rules that matched.")
    shadow_rules = MatchedRuleOutput(many=True, help_text="The shadow rules that matched (recorded, never acted on).")
    reasons = RiskReasonOutput(many=True, help_text="What the score is made of, largest first.")
    simplified = serializers.BooleanField(help_text="Screened in simplified flow: lists and static rules, no velocity or score.")
    degraded = serializers.BooleanField(help_text="The velocity counters were out of reach: no velocity or score.")
    review = serializers.SerializerMethodField()

    def get_review(self, obj) -> str | None:
        """The review (prv_…) of a payment held for review."""
        return _review_of(obj)


class RuleVersionOutput(serializers.Serializer):
    version = serializers.IntegerField(source="number")
    rule = serializers.CharField(source="source")
    action = serializers.ChoiceField(choices=["allow", "block", "review", "request_3ds"])
    mode = serializers.ChoiceField(choices=["active", "shadow", "disabled"])
    description = serializers.CharField()
    created_by = serializers.CharField()
    created_at = serializers.SerializerMethodField()

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)


class RuleOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    rule = serializers.CharField(source="current_version.source")
    action = serializers.ChoiceField(choices=["allow", "block", "review", "request_3ds"], source="current_version.action")
    mode = serializers.ChoiceField(choices=["active", "shadow", "disabled"], source="current_version.mode")
    description = serializers.CharField(source="current_version.description")
    version = serializers.IntegerField(source="current_version.number")
    platform = serializers.BooleanField(source="is_platform")
    merchant = serializers.SerializerMethodField()
    livemode = serializers.BooleanField(allow_null=True)
    created_at = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "fraud_rule"

    def get_merchant(self, obj) -> str | None:
        return obj.merchant.public_id if obj.merchant_id else None

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)

    def get_updated_at(self, obj) -> str:
        return utc_iso(obj.updated_at)


class RuleDetailOutput(RuleOutput):
    versions = RuleVersionOutput(many=True, source="versions.all", help_text="Every version, oldest first.")


class ListItemOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    list = serializers.CharField()
    value = serializers.CharField()
    reason = serializers.CharField()
    expires_at = serializers.SerializerMethodField()
    expired = serializers.SerializerMethodField()
    removed = serializers.SerializerMethodField()
    created_by = serializers.CharField()
    livemode = serializers.BooleanField()
    merchant = serializers.CharField(source="merchant.public_id")
    created_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "fraud_list_item"

    def get_expires_at(self, obj) -> str | None:
        return utc_iso(obj.expires_at) if obj.expires_at else None

    def get_expired(self, obj) -> bool:
        return obj.expires_at is not None and obj.expires_at <= timezone.now()

    def get_removed(self, obj) -> bool:
        return obj.removed_at is not None

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)


class ListSummaryOutput(serializers.Serializer):
    name = serializers.CharField()
    object = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(choices=["email", "card_fingerprint", "ip_address", "customer", "country"])
    purpose = serializers.ChoiceField(choices=["allowed", "blocked"])
    item_count = serializers.IntegerField()

    def get_object(self, obj) -> str:
        return "fraud_list"


class ReviewOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=["open", "approving", "rejecting", "approved", "rejected"])
    transaction = serializers.CharField(source="transaction.public_id")
    amount = serializers.IntegerField(source="transaction.amount")
    currency = serializers.CharField(source="transaction.currency")
    transaction_status = serializers.CharField(source="transaction.status")
    risk = RiskOutput(source="decision")
    result = serializers.CharField(allow_null=True)
    refund = serializers.CharField(allow_null=True, source="refund_public_id")
    closed_by = serializers.CharField(allow_null=True)
    note = serializers.CharField()
    livemode = serializers.BooleanField()
    merchant = serializers.CharField(source="merchant.public_id")
    created_at = serializers.SerializerMethodField()
    closed_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "review"

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)

    def get_closed_at(self, obj) -> str | None:
        return utc_iso(obj.closed_at) if obj.closed_at else None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in ("result", "refund", "closed_by"):
            data[name] = data[name] or None
        return data


class BacktestMatchOutput(serializers.Serializer):
    transaction = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    decision = serializers.ChoiceField(choices=["allow", "block", "review", "request_3ds"])
    created_at = serializers.CharField()


class BacktestOutput(serializers.Serializer):
    object = serializers.SerializerMethodField()
    rule = serializers.CharField()
    action = serializers.ChoiceField(choices=["allow", "block", "review", "request_3ds"])
    days = serializers.IntegerField()
    evaluated = serializers.IntegerField(help_text="Screened payments of the period the rule was evaluated against.")
    matched = serializers.IntegerField(help_text="How many of them the rule matches.")
    truncated = serializers.BooleanField(help_text="More payments than FLOWPAY_FRAUD_BACKTEST_MAX_PAYMENTS: the newest were read.")
    matches = BacktestMatchOutput(many=True, help_text="The matching payments, newest first (at most `limit`).")

    def get_object(self, obj) -> str:
        return "fraud_rule_test"
