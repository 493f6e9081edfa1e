"""Input serializers of the fraud API (snake_case here; the camelCase parser translates at
the edge). Outputs live in fraud.screening.representations."""

from rest_framework import serializers

from core.api.serializers import InputSerializer, LivemodeFilterMixin, StatusListMixin, StrictIntegerField
from fraud.models import ReviewStatus, RuleMode
from fraud.screening.backtest import MAX_DAYS, MAX_MATCHES
from fraud.screening.language.parser import MAX_RULE_LENGTH

RULE_HELP = "The rule, Radar's syntax: `ACTION if CONDITION`, e.g. `block if :amount: > 500000`."


class RuleCreateInput(InputSerializer):
    rule = serializers.CharField(max_length=MAX_RULE_LENGTH, help_text=RULE_HELP)
    mode = serializers.ChoiceField(choices=[RuleMode.ACTIVE, RuleMode.SHADOW], default=RuleMode.ACTIVE,
                                   help_text="active: acted on; shadow: evaluated and recorded, never acted on.")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RuleUpdateInput(InputSerializer):
    """Any of the fields; the change is a new version of the rule."""

    schema_constraints = {"minProperties": 1}

    rule = serializers.CharField(max_length=MAX_RULE_LENGTH, required=False, help_text=RULE_HELP)
    mode = serializers.ChoiceField(choices=[RuleMode.ACTIVE, RuleMode.SHADOW], required=False)
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Send at least one of rule, mode and description.")
        return attrs


class RuleListFilters(LivemodeFilterMixin, InputSerializer):
    mode = serializers.ChoiceField(choices=RuleMode.values, required=False)
    platform = serializers.BooleanField(required=False, allow_null=True, default=None)


class RuleTestInput(InputSerializer):
    rule = serializers.CharField(max_length=MAX_RULE_LENGTH, help_text=RULE_HELP)
    days = StrictIntegerField(min_value=1, max_value=MAX_DAYS, required=False, default=30,
                              help_text="Evaluate the payments screened over this many days.")
    limit = StrictIntegerField(min_value=1, max_value=MAX_MATCHES, required=False, default=20,
                               help_text="How many matches to list.")


class ListItemCreateInput(InputSerializer):
    value = serializers.CharField(max_length=255, help_text="An email, card fingerprint, IP address, customer id or "
                                                            "two-letter country, as the list holds.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(required=False, help_text="When the item stops matching (optional).")


class ListItemListFilters(LivemodeFilterMixin, InputSerializer):
    """No filter but the staff mode filter: unknown parameters are refused."""


class ReviewListFilters(LivemodeFilterMixin, StatusListMixin, InputSerializer):
    status = serializers.ListField(child=serializers.ChoiceField(choices=ReviewStatus.values), required=False)


class ReviewDecisionInput(InputSerializer):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="",
                                 help_text="Why (recorded with the reviewer in the audit log).")
