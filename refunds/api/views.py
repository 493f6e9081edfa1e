"""Refunds and chargebacks API: thin views that parse input, call one service or selector,
and render. Merchants see and act on their own objects only (404 otherwise); staff tokens
act across merchants according to their role."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.selectors import merchant_visible_to
from core.api.permissions import capability_permission
from core.api.serializers import EmptyInput
from core.api.views import IDEMPOTENCY_HEADER, ApiView, idempotent
from core.permissions import Capability
from core.selectors import UNSCOPED
from payments.selectors import transaction_get
from refunds.api.serializers import (
    ChargebackCreateInput,
    ChargebackEvidenceInput,
    ChargebackListFilters,
    ChargebackOutcomeInput,
    RefundCreateInput,
    RefundListFilters,
    RefundRejectInput,
)
from refunds.representations import ChargebackOutput, RefundOutput
from refunds.selectors import chargeback_get, chargebacks_list, refund_get, refunds_list
from refunds.services.chargebacks import (
    chargeback_accept,
    chargeback_create,
    chargeback_record_outcome,
    chargeback_submit_evidence,
)
from refunds.services.create import refund_approve, refund_create, refund_reject
from refunds.services.recovery import refund_retry


class RefundsApiView(ApiView):
    def render_refund(self, refund, *, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(RefundOutput(refund, context=self.output_context()).data, status=status_code)

    def render_chargeback(self, chargeback, *, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(ChargebackOutput(chargeback, context=self.output_context()).data, status=status_code)

    def output_context(self) -> dict:
        return {"staff": self.request.merchant is None}

    def paginate_with_context(self, queryset, output_serializer) -> Response:
        context = self.output_context()
        return self.paginate(queryset, lambda page, many: output_serializer(page, many=many, context=context))


# --- refunds --------------------------------------------------------------------------
class TransactionRefundApi(RefundsApiView):
    """The runbook's manual refund: POST /payment/transactions/{transactionId}/refund. Its
    $ADMIN_TOKEN is a staff token holding refund.create (support, finance or admin)."""

    permission_classes = [capability_permission(Capability.REFUND_CREATE, merchant=True)]

    @extend_schema(request=RefundCreateInput, responses={201: RefundOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Refund a payment (amount optional: what remains)")
    @idempotent
    def post(self, request, transaction_id: str):
        data = self.validated(RefundCreateInput)
        txn = transaction_get(public_id=transaction_id, scope=request.scope)
        refund = refund_create(
            transaction_id=txn.pk, amount=data.get("amount"), reason=data["reason"],
            refund_to_original_method=data["refund_to_original_method"], actor=request.actor,
            idempotency_record_id=self.idempotency_record_id,
        )
        # Re-read (an off-gateway credit, or a task run at commit, may have finished it). Not
        # refresh_from_db(): django-fsm's version toggles a class-wide flag and is not thread-safe.
        refund = refund_get(public_id=refund.public_id, scope=UNSCOPED)
        return self.render_refund(refund, status_code=status.HTTP_201_CREATED)


class TransactionRefundsListApi(RefundsApiView):
    permission_classes = [capability_permission(Capability.REFUND_READ, merchant=True)]

    @extend_schema(responses={200: RefundOutput(many=True)}, summary="List a payment's refunds")
    def get(self, request, transaction_id: str):
        self.validated_query(RefundListFilters)  # only pagination; rejects unknown parameters
        txn = transaction_get(public_id=transaction_id, scope=request.scope)
        return self.paginate_with_context(refunds_list(scope=request.scope, transaction_public_id=txn.public_id), RefundOutput)


class RefundListApi(RefundsApiView):
    permission_classes = [capability_permission(Capability.REFUND_READ, merchant=True)]

    @extend_schema(parameters=[RefundListFilters], responses={200: RefundOutput(many=True)}, summary="List refunds")
    def get(self, request):
        filters = self.validated_query(RefundListFilters)
        query = refunds_list(
            scope=merchant_visible_to(
                scope=request.scope, merchant_public_id=filters.get("merchant"), livemode=filters.get("livemode"),
            ),
            statuses=filters.get("status"),
            transaction_public_id=filters.get("transaction"),
            created_gte=filters.get("created_gte"),
            created_lte=filters.get("created_lte"),
        )
        return self.paginate_with_context(query, RefundOutput)


class RefundDetailApi(RefundsApiView):
    permission_classes = [capability_permission(Capability.REFUND_READ, merchant=True)]

    @extend_schema(responses={200: RefundOutput}, summary="Retrieve a refund")
    def get(self, request, refund_id: str):
        return self.render_refund(refund_get(public_id=refund_id, scope=request.scope))


class RefundApproveApi(RefundsApiView):
    """Four-eyes: a finance or admin user other than the requester approves."""

    permission_classes = [capability_permission(Capability.REFUND_APPROVE)]

    @extend_schema(request=EmptyInput, responses={200: RefundOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Approve a refund awaiting approval (finance, admin)")
    @idempotent
    def post(self, request, refund_id: str):
        self.validated(EmptyInput)
        refund = refund_get(public_id=refund_id, scope=UNSCOPED)
        refund = refund_approve(refund_id=refund.pk, actor=request.actor)
        refund = refund_get(public_id=refund.public_id, scope=UNSCOPED)
        return self.render_refund(refund)


class RefundRejectApi(RefundsApiView):
    permission_classes = [capability_permission(Capability.REFUND_APPROVE)]

    @extend_schema(request=RefundRejectInput, responses={200: RefundOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Reject a refund awaiting approval (finance, admin)")
    @idempotent
    def post(self, request, refund_id: str):
        data = self.validated(RefundRejectInput)
        refund = refund_get(public_id=refund_id, scope=UNSCOPED)
        return self.render_refund(refund_reject(refund_id=refund.pk, actor=request.actor, reason=data["reason"]))


class RefundRetryApi(RefundsApiView):
    permission_classes = [capability_permission(Capability.REFUND_RETRY, merchant=True)]

    @extend_schema(request=EmptyInput, responses={200: RefundOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Retry a failed refund")
    @idempotent
    def post(self, request, refund_id: str):
        self.validated(EmptyInput)
        refund = refund_get(public_id=refund_id, scope=request.scope)
        refund = refund_retry(refund_id=refund.pk, actor=request.actor)
        refund = refund_get(public_id=refund.public_id, scope=UNSCOPED)
        return self.render_refund(refund)


# --- chargebacks ----------------------------------------------------------------------
class TransactionChargebackApi(RefundsApiView):
    """The runbook's chargeback: POST /payment/transactions/{transactionId}/chargeback.
    201 when recorded; 200 with the existing chargeback when this reference was already
    recorded on this payment."""

    permission_classes = [capability_permission(Capability.CHARGEBACK_RECORD, merchant=True)]

    @extend_schema(request=ChargebackCreateInput, responses={201: ChargebackOutput, 200: ChargebackOutput},
                   parameters=[IDEMPOTENCY_HEADER], summary="Record a chargeback on a payment")
    @idempotent
    def post(self, request, transaction_id: str):
        data = self.validated(ChargebackCreateInput)
        txn = transaction_get(public_id=transaction_id, scope=request.scope)
        chargeback, created = chargeback_create(
            transaction_id=txn.pk, chargeback_reference=data["chargeback_reference"], amount=data.get("amount"),
            reason=data["reason"], evidence_due_by=data.get("evidence_due_by"), actor=request.actor,
        )
        return self.render_chargeback(chargeback, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TransactionChargebacksListApi(RefundsApiView):
    permission_classes = [capability_permission(Capability.CHARGEBACK_READ, merchant=True)]

    @extend_schema(responses={200: ChargebackOutput(many=True)}, summary="List a payment's chargebacks")
    def get(self, request, transaction_id: str):
        self.validated_query(ChargebackListFilters)
        txn = transaction_get(public_id=transaction_id, scope=request.scope)
        query = chargebacks_list(scope=request.scope, transaction_public_id=txn.public_id)
        return self.paginate_with_context(query, ChargebackOutput)


class ChargebackListApi(RefundsApiView):
    permission_classes = [capability_permission(Capability.CHARGEBACK_READ, merchant=True)]

    @extend_schema(parameters=[ChargebackListFilters], responses={200: ChargebackOutput(many=True)},
                   summary="List chargebacks (filters: status, dueBefore, transaction)")
    def get(self, request):
        filters = self.validated_query(ChargebackListFilters)
        query = chargebacks_list(
            scope=merchant_visible_to(
                scope=request.scope, merchant_public_id=filters.get("merchant"), livemode=filters.get("livemode"),
            ),
            statuses=filters.get("status"),
            due_before=filters.get("due_before"),
            transaction_public_id=filters.get("transaction"),
        )
        return self.paginate_with_context(query, ChargebackOutput)


class ChargebackDetailApi(RefundsApiView):
    permission_classes = [capability_permission(Capability.CHARGEBACK_READ, merchant=True)]

    @extend_schema(responses={200: ChargebackOutput}, summary="Retrieve a chargeback")
    def get(self, request, chargeback_id: str):
        return self.render_chargeback(chargeback_get(public_id=chargeback_id, scope=request.scope))


class ChargebackEvidenceApi(RefundsApiView):
    permission_classes = [capability_permission(Capability.CHARGEBACK_RESPOND, merchant=True)]

    @extend_schema(request=ChargebackEvidenceInput, responses={200: ChargebackOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Submit evidence (text and file references): needs_response → under_review")
    @idempotent
    def post(self, request, chargeback_id: str):
        data = self.validated(ChargebackEvidenceInput)
        chargeback = chargeback_get(public_id=chargeback_id, scope=request.scope)
        chargeback = chargeback_submit_evidence(
            chargeback_id=chargeback.pk, text=data["text"], files=data["files"], actor=request.actor
        )
        return self.render_chargeback(chargeback_get(public_id=chargeback.public_id, scope=UNSCOPED))


class ChargebackAcceptApi(RefundsApiView):
    permission_classes = [capability_permission(Capability.CHARGEBACK_RESPOND, merchant=True)]

    @extend_schema(request=EmptyInput, responses={200: ChargebackOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Accept a chargeback without contesting it (funds withdrawn)")
    @idempotent
    def post(self, request, chargeback_id: str):
        self.validated(EmptyInput)
        chargeback = chargeback_get(public_id=chargeback_id, scope=request.scope)
        return self.render_chargeback(chargeback_accept(chargeback_id=chargeback.pk, actor=request.actor))


class ChargebackOutcomeApi(RefundsApiView):
    """The network's decision, recorded by finance or admin staff (gateway events use the
    same service)."""

    permission_classes = [capability_permission(Capability.CHARGEBACK_OUTCOME)]

    @extend_schema(request=ChargebackOutcomeInput, responses={200: ChargebackOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Record a chargeback's outcome: won (funds reinstated) or lost (funds withdrawn)")
    @idempotent
    def post(self, request, chargeback_id: str):
        data = self.validated(ChargebackOutcomeInput)
        chargeback = chargeback_get(public_id=chargeback_id, scope=UNSCOPED)
        return self.render_chargeback(
            chargeback_record_outcome(chargeback_id=chargeback.pk, outcome=data["outcome"], actor=request.actor)
        )
