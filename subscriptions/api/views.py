"""Subscriptions API: plans, subscriptions, invoices, the merchant's subscription settings.
Thin views: parse, call one service or selector, render. Writes are merchant-only; staff
tokens may read across merchants; a merchant never sees another merchant's objects (404)."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.selectors import merchant_visible_to
from core.api.permissions import MerchantOnly, capability_permission
from core.api.serializers import EmptyInput
from core.api.views import IDEMPOTENCY_HEADER, ApiView, idempotent
from core.permissions import Capability
from subscriptions.api.serializers import (
    InvoiceListFilters,
    PlanCreateInput,
    PlanListFilters,
    SubscriptionCancelInput,
    SubscriptionCreateInput,
    SubscriptionListFilters,
    SubscriptionSettingsInput,
    SubscriptionUpdateInput,
)
from subscriptions.representations import InvoiceOutput, PlanOutput, SubscriptionOutput, SubscriptionSettingsOutput
from subscriptions.selectors import (
    invoice_get,
    invoices_list,
    plan_get,
    plans_list,
    subscription_get,
    subscription_settings_get,
    subscriptions_list,
)
from subscriptions.services.plans import plan_create, plan_deactivate, subscription_settings_update
from subscriptions.services.subscriptions import (
    subscription_cancel,
    subscription_create,
    subscription_pause,
    subscription_resume,
    subscription_update,
)

SubscriptionReaders = capability_permission(Capability.SUBSCRIPTION_READ, merchant=True)


class _ReadOrMerchantWrite(ApiView):
    def get_permissions(self):
        return [MerchantOnly()] if self.request.method == "POST" else [SubscriptionReaders()]


# --- plans -------------------------------------------------------------------------------
class PlanListCreateApi(_ReadOrMerchantWrite):
    @extend_schema(request=PlanCreateInput, responses={201: PlanOutput}, parameters=[IDEMPOTENCY_HEADER], summary="Create a plan")
    @idempotent
    def post(self, request):
        data = self.validated(PlanCreateInput)
        plan = plan_create(
            merchant=request.merchant, livemode=request.livemode, actor=request.actor,
            idempotency_record_id=self.idempotency_record_id, **data,
        )
        return Response(PlanOutput(plan).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[PlanListFilters], responses={200: PlanOutput(many=True)}, summary="List plans")
    def get(self, request):
        filters = self.validated_query(PlanListFilters)
        scope = merchant_visible_to(scope=request.scope, livemode=filters.get("livemode"))
        return self.paginate(plans_list(scope=scope, active=filters.get("active")).select_related("merchant"), PlanOutput)


class PlanDetailApi(ApiView):
    permission_classes = [SubscriptionReaders]

    @extend_schema(responses={200: PlanOutput}, summary="Retrieve a plan")
    def get(self, request, plan_id: str):
        return Response(PlanOutput(plan_get(public_id=plan_id, scope=request.scope)).data)


class PlanDeactivateApi(ApiView):
    permission_classes = [MerchantOnly]

    @extend_schema(request=EmptyInput, responses={200: PlanOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Deactivate a plan (no new subscriptions; existing ones keep billing)")
    @idempotent
    def post(self, request, plan_id: str):
        self.validated(EmptyInput)
        plan = plan_get(public_id=plan_id, scope=request.scope)
        return Response(PlanOutput(plan_deactivate(plan_id=plan.pk, actor=request.actor)).data)


# --- subscriptions -----------------------------------------------------------------------
class SubscriptionListCreateApi(_ReadOrMerchantWrite):
    @extend_schema(request=SubscriptionCreateInput, responses={201: SubscriptionOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Create a subscription (without a trial, the first invoice is charged now)")
    @idempotent
    def post(self, request):
        data = self.validated(SubscriptionCreateInput)
        subscription = subscription_create(
            merchant=request.merchant, customer=data["customer"], plan=data["plan"], payment_method=data["payment_method"],
            trial_days=data.get("trial_days"), metadata=data["metadata"], actor=request.actor,
            livemode=request.livemode, idempotency_record_id=self.idempotency_record_id,
        )
        return Response(SubscriptionOutput(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[SubscriptionListFilters], responses={200: SubscriptionOutput(many=True)}, summary="List subscriptions")
    def get(self, request):
        filters = self.validated_query(SubscriptionListFilters)
        query = subscriptions_list(
            scope=merchant_visible_to(scope=request.scope, livemode=filters.get("livemode")),
            statuses=filters.get("status"), customer=filters.get("customer"), plan=filters.get("plan"),
        )
        return self.paginate(query.select_related("merchant", "plan__merchant"), SubscriptionOutput)


class SubscriptionDetailApi(ApiView):
    def get_permissions(self):
        return [MerchantOnly()] if self.request.method == "POST" else [SubscriptionReaders()]

    @extend_schema(responses={200: SubscriptionOutput}, summary="Retrieve a subscription")
    def get(self, request, subscription_id: str):
        return Response(SubscriptionOutput(subscription_get(public_id=subscription_id, scope=request.scope)).data)

    @extend_schema(request=SubscriptionUpdateInput, responses={200: SubscriptionOutput}, parameters=[IDEMPOTENCY_HEADER],
                   operation_id="payment_subscriptions_update",
                   summary="Update a subscription's payment method or cancelAtPeriodEnd")
    @idempotent
    def post(self, request, subscription_id: str):
        data = self.validated(SubscriptionUpdateInput)
        subscription = subscription_get(public_id=subscription_id, scope=request.scope)
        subscription_update(subscription_id=subscription.pk, actor=request.actor, **data)
        return Response(SubscriptionOutput(subscription_get(public_id=subscription_id, scope=request.scope)).data)


class SubscriptionCancelApi(ApiView):
    permission_classes = [MerchantOnly]

    @extend_schema(request=SubscriptionCancelInput, responses={200: SubscriptionOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Cancel a subscription now, or at the end of the current period (atPeriodEnd)")
    @idempotent
    def post(self, request, subscription_id: str):
        data = self.validated(SubscriptionCancelInput)
        subscription = subscription_get(public_id=subscription_id, scope=request.scope)
        subscription_cancel(subscription_id=subscription.pk, at_period_end=data["at_period_end"], actor=request.actor)
        return Response(SubscriptionOutput(subscription_get(public_id=subscription_id, scope=request.scope)).data)


class SubscriptionPauseApi(ApiView):
    permission_classes = [MerchantOnly]

    @extend_schema(request=EmptyInput, responses={200: SubscriptionOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Pause an active subscription (no invoices while paused)")
    @idempotent
    def post(self, request, subscription_id: str):
        self.validated(EmptyInput)
        subscription = subscription_get(public_id=subscription_id, scope=request.scope)
        subscription_pause(subscription_id=subscription.pk, actor=request.actor)
        return Response(SubscriptionOutput(subscription_get(public_id=subscription_id, scope=request.scope)).data)


class SubscriptionResumeApi(ApiView):
    permission_classes = [MerchantOnly]

    @extend_schema(request=EmptyInput, responses={200: SubscriptionOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Resume a paused subscription")
    @idempotent
    def post(self, request, subscription_id: str):
        self.validated(EmptyInput)
        subscription = subscription_get(public_id=subscription_id, scope=request.scope)
        subscription_resume(subscription_id=subscription.pk, actor=request.actor)
        return Response(SubscriptionOutput(subscription_get(public_id=subscription_id, scope=request.scope)).data)


# --- invoices ----------------------------------------------------------------------------
class InvoiceListApi(ApiView):
    permission_classes = [SubscriptionReaders]

    @extend_schema(parameters=[InvoiceListFilters], responses={200: InvoiceOutput(many=True)}, summary="List invoices")
    def get(self, request):
        filters = self.validated_query(InvoiceListFilters)
        query = invoices_list(
            scope=merchant_visible_to(scope=request.scope, livemode=filters.get("livemode")),
            subscription=filters.get("subscription"), statuses=filters.get("status"),
        )
        return self.paginate(query.select_related("merchant"), InvoiceOutput)


class InvoiceDetailApi(ApiView):
    permission_classes = [SubscriptionReaders]

    @extend_schema(responses={200: InvoiceOutput}, summary="Retrieve an invoice")
    def get(self, request, invoice_id: str):
        return Response(InvoiceOutput(invoice_get(public_id=invoice_id, scope=request.scope)).data)


# --- settings ----------------------------------------------------------------------------
class SubscriptionSettingsApi(ApiView):
    permission_classes = [MerchantOnly]

    @extend_schema(responses={200: SubscriptionSettingsOutput}, summary="The merchant's subscription settings")
    def get(self, request):
        return Response(SubscriptionSettingsOutput(subscription_settings_get(merchant=request.merchant)).data)

    @extend_schema(request=SubscriptionSettingsInput, responses={200: SubscriptionSettingsOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Set what a subscription becomes when dunning fails (unpaid or canceled)")
    @idempotent
    def post(self, request):
        data = self.validated(SubscriptionSettingsInput)
        row = subscription_settings_update(merchant=request.merchant, actor=request.actor, **data)
        return Response(SubscriptionSettingsOutput(row).data)
