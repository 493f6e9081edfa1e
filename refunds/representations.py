"""How refunds and chargebacks are rendered: the API's output serializers (snake_case here;
the camelCase renderer translates at the edge) and, through webhooks.payloads, the outbox
event payloads, so a merchant gets the same JSON from both."""

from rest_framework import serializers

from core.representations import utc_iso


class ActorOutput(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.CharField(allow_null=True)


def _actor(context, actor_type: str, actor_id: str) -> dict:
    # Staff usernames are internal: merchants see that staff acted, not who.
    shown = actor_id if context.get("staff") or actor_type != "staff" else None
    return {"type": actor_type, "id": shown}


class RefundOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    livemode = serializers.BooleanField()
    status = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    transaction = serializers.CharField(source="transaction.public_id")
    merchant = serializers.CharField(source="merchant.public_id")
    reason = serializers.CharField()
    refund_to_original_method = serializers.BooleanField()
    method = serializers.CharField()
    initiated_by = serializers.SerializerMethodField()
    approval = serializers.SerializerMethodField()
    gateway = serializers.SerializerMethodField()
    gateway_reference = serializers.SerializerMethodField()
    failure_code = serializers.SerializerMethodField()
    failure_message = serializers.SerializerMethodField()
    attempts = serializers.IntegerField()
    next_retry_at = serializers.SerializerMethodField()
    created_at = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()
    succeeded_at = serializers.SerializerMethodField()
    failed_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "refund"

    def get_initiated_by(self, obj) -> dict:
        return _actor(self.context, obj.initiated_by_type, obj.initiated_by_id)

    def get_approval(self, obj) -> dict | None:
        if not obj.approval_required:
            return None
        staff = self.context.get("staff")
        return {
            "required": True,
            "approved_by": (obj.approved_by.get_username() if staff else "staff") if obj.approved_by_id else None,
            "approved_at": utc_iso(obj.approved_at),
            "rejected_by": (obj.rejected_by.get_username() if staff else "staff") if obj.rejected_by_id else None,
            "rejected_at": utc_iso(obj.rejected_at),
            "rejection_reason": obj.rejection_reason or None,
        }

    def get_gateway(self, obj) -> str | None:
        return obj.gateway or None

    def get_gateway_reference(self, obj) -> str | None:
        return obj.gateway_reference or None

    def get_failure_code(self, obj) -> str | None:
        return obj.failure_code or None

    def get_failure_message(self, obj) -> str | None:
        return obj.failure_message or None

    def get_next_retry_at(self, obj) -> str | None:
        return utc_iso(obj.next_retry_at)

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)

    def get_updated_at(self, obj) -> str:
        return utc_iso(obj.updated_at)

    def get_succeeded_at(self, obj) -> str | None:
        return utc_iso(obj.succeeded_at)

    def get_failed_at(self, obj) -> str | None:
        return utc_iso(obj.failed_at)


class ChargebackEvidenceOutput(serializers.Serializer):
    text = serializers.CharField()
    files = serializers.ListField(child=serializers.CharField())
    submitted_by = serializers.SerializerMethodField()
    submitted_at = serializers.SerializerMethodField()

    def get_submitted_by(self, obj) -> dict:
        return _actor(self.context, obj.submitted_by_type, obj.submitted_by_id)

    def get_submitted_at(self, obj) -> str:
        return utc_iso(obj.submitted_at)


class ChargebackOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    livemode = serializers.BooleanField()
    status = serializers.CharField()
    chargeback_reference = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    transaction = serializers.CharField(source="transaction.public_id")
    merchant = serializers.CharField(source="merchant.public_id")
    reason = serializers.CharField()
    evidence_due_by = serializers.SerializerMethodField()
    evidence = serializers.SerializerMethodField()
    evidence_submitted_at = serializers.SerializerMethodField()
    accepted_at = serializers.SerializerMethodField()
    closed_at = serializers.SerializerMethodField()
    amount_withdrawn = serializers.IntegerField()
    amount_on_refunded_funds = serializers.IntegerField()
    funds_withdrawn_at = serializers.SerializerMethodField()
    amount_reinstated = serializers.IntegerField()
    funds_reinstated_at = serializers.SerializerMethodField()
    gateway = serializers.SerializerMethodField()
    gateway_reference = serializers.SerializerMethodField()
    initiated_by = serializers.SerializerMethodField()
    created_at = serializers.SerializerMethodField()
    updated_at = serializers.SerializerMethodField()

    def get_object(self, obj) -> str:
        return "chargeback"

    def get_evidence(self, obj) -> list[dict]:
        return ChargebackEvidenceOutput(obj.evidence.all(), many=True, context=self.context).data

    def get_initiated_by(self, obj) -> dict:
        return _actor(self.context, obj.initiated_by_type, obj.initiated_by_id)

    def get_gateway(self, obj) -> str | None:
        return obj.gateway or None

    def get_gateway_reference(self, obj) -> str | None:
        return obj.gateway_reference or None

    def get_evidence_due_by(self, obj) -> str:
        return utc_iso(obj.evidence_due_by)

    def get_evidence_submitted_at(self, obj) -> str | None:
        return utc_iso(obj.evidence_submitted_at)

    def get_accepted_at(self, obj) -> str | None:
        return utc_iso(obj.accepted_at)

    def get_closed_at(self, obj) -> str | None:
        return utc_iso(obj.closed_at)

    def get_funds_withdrawn_at(self, obj) -> str | None:
        return utc_iso(obj.funds_withdrawn_at)

    def get_funds_reinstated_at(self, obj) -> str | None:
        return utc_iso(obj.funds_reinstated_at)

    def get_created_at(self, obj) -> str:
        return utc_iso(obj.created_at)

    def get_updated_at(self, obj) -> str:
        return utc_iso(obj.updated_at)
