"""Input serializers of the refunds and chargebacks API (snake_case here; the camelCase
parser translates at the edge). Outputs live in refunds.representations."""

from rest_framework import serializers

from core.api.serializers import (
    NOT_BLANK_PATTERN,
    CreatedRangeMixin,
    InputSerializer,
    LivemodeFilterMixin,
    StatusListMixin,
    StrictIntegerField,
)
from core.errors import ErrorCode
from core.money import MAX_AMOUNT
from refunds.models import ChargebackStatus, RefundStatus
from refunds.services.chargebacks import EVIDENCE_FILE_REF_MAX_LENGTH, EVIDENCE_MAX_FILES, EVIDENCE_TEXT_MAX_LENGTH
from refunds.services.policy import REASON_MAX_LENGTH


class VerbatimTextField(serializers.CharField):
    """Text stored exactly as sent: not trimmed (the reason is kept verbatim)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)


# --- refunds --------------------------------------------------------------------------
class RefundCreateInput(InputSerializer):
    amount = StrictIntegerField(min_value=1, max_value=MAX_AMOUNT, required=False)
    # Required for staff (checked by the service, which the admin shares); recommended for merchants.
    reason = VerbatimTextField(max_length=REASON_MAX_LENGTH, required=False, allow_blank=True, default="")
    refund_to_original_method = serializers.BooleanField(required=False, default=True)

    def validate_refund_to_original_method(self, value):
        if not isinstance(self.initial_data.get("refund_to_original_method", True), bool):
            raise serializers.ValidationError("Must be true or false.", code=ErrorCode.INVALID)
        return value


class RefundRejectInput(InputSerializer):
    reason = VerbatimTextField(max_length=REASON_MAX_LENGTH, required=False, allow_blank=True, default="")


class RefundListFilters(LivemodeFilterMixin, StatusListMixin, CreatedRangeMixin, InputSerializer):
    status = serializers.ListField(child=serializers.ChoiceField(choices=RefundStatus.values), required=False)
    transaction = serializers.CharField(max_length=40, required=False)
    merchant = serializers.CharField(max_length=40, required=False)  # staff only


# --- chargebacks ----------------------------------------------------------------------
class ChargebackCreateInput(InputSerializer):
    chargeback_reference = serializers.CharField(max_length=255)
    amount = StrictIntegerField(min_value=1, max_value=MAX_AMOUNT, required=False)
    reason = VerbatimTextField(max_length=REASON_MAX_LENGTH, required=False, allow_blank=True, default="")
    evidence_due_by = serializers.DateTimeField(required=False)


class ChargebackEvidenceInput(InputSerializer):
    # A text that is not blank, file references, or both (validate()).
    schema_constraints = {"anyOf": [
        {"required": ["text"], "properties": {"text": {"pattern": NOT_BLANK_PATTERN}}},
        {"required": ["files"], "properties": {"files": {"minItems": 1}}},
    ]}

    text = VerbatimTextField(max_length=EVIDENCE_TEXT_MAX_LENGTH, required=False, allow_blank=True, default="")
    files = serializers.ListField(
        child=serializers.CharField(max_length=EVIDENCE_FILE_REF_MAX_LENGTH), max_length=EVIDENCE_MAX_FILES,
        required=False, default=list,
    )

    def validate(self, attrs):
        if not attrs["text"].strip() and not attrs["files"]:
            raise serializers.ValidationError({"text": "Send a text, file references (files), or both."})
        return attrs


class ChargebackOutcomeInput(InputSerializer):
    outcome = serializers.ChoiceField(choices=[ChargebackStatus.WON, ChargebackStatus.LOST])


class ChargebackListFilters(LivemodeFilterMixin, StatusListMixin, InputSerializer):
    status = serializers.ListField(child=serializers.ChoiceField(choices=ChargebackStatus.values), required=False)
    due_before = serializers.DateTimeField(required=False)
    transaction = serializers.CharField(max_length=40, required=False)
    merchant = serializers.CharField(max_length=40, required=False)  # staff only


