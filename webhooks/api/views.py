"""Merchant API for webhooks: endpoints, events (to catch up after downtime) and deliveries."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.selectors import merchant_visible_to
from core.api.permissions import MerchantOnly, capability_permission
from core.api.serializers import EmptyInput
from core.api.views import IDEMPOTENCY_HEADER, ApiView, idempotent
from core.permissions import Capability
from webhooks.api.serializers import (
    EventListFilters,
    EventOutput,
    WebhookDeliveryListFilters,
    WebhookDeliveryOutput,
    WebhookEndpointCreatedOutput,
    WebhookEndpointCreateInput,
    WebhookEndpointListFilters,
    WebhookEndpointOutput,
)
from webhooks.selectors import (
    event_get,
    events_list,
    webhook_deliveries_list,
    webhook_delivery_get,
    webhook_endpoint_get,
    webhook_endpoints_list,
)
from webhooks.services.deliveries import webhook_delivery_resend
from webhooks.services.endpoints import webhook_endpoint_create, webhook_endpoint_delete


class WebhookEndpointListCreateApi(ApiView):
    def get_permissions(self):
        return [MerchantOnly()] if self.request.method == "POST" else [capability_permission(Capability.WEBHOOK_READ, merchant=True)()]

    @extend_schema(request=WebhookEndpointCreateInput, responses={201: WebhookEndpointCreatedOutput},
                   parameters=[IDEMPOTENCY_HEADER], summary="Register a webhook endpoint (its signing secret is shown once)")
    @idempotent
    def post(self, request):
        data = self.validated(WebhookEndpointCreateInput)
        endpoint = webhook_endpoint_create(
            merchant=request.merchant, url=data["url"], enabled_events=data["enabled_events"],
            description=data["description"], livemode=request.livemode, actor=request.actor,
            idempotency_record_id=self.idempotency_record_id,
        )
        return Response(WebhookEndpointCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: WebhookEndpointOutput(many=True)}, summary="List webhook endpoints")
    def get(self, request):
        filters = self.validated_query(WebhookEndpointListFilters)
        scope = merchant_visible_to(scope=request.scope, livemode=filters.get("livemode"))
        return self.paginate(webhook_endpoints_list(scope=scope), WebhookEndpointOutput)


class WebhookEndpointDetailApi(ApiView):
    def get_permissions(self):
        return [MerchantOnly()] if self.request.method == "DELETE" else [capability_permission(Capability.WEBHOOK_READ, merchant=True)()]

    @extend_schema(responses={200: WebhookEndpointOutput}, summary="Retrieve a webhook endpoint")
    def get(self, request, endpoint_id: str):
        return Response(WebhookEndpointOutput(webhook_endpoint_get(public_id=endpoint_id, scope=request.scope)).data)

    @extend_schema(responses={200: WebhookEndpointOutput}, summary="Delete a webhook endpoint (it stops receiving events)")
    def delete(self, request, endpoint_id: str):
        endpoint = webhook_endpoint_get(public_id=endpoint_id, scope=request.scope)
        return Response(WebhookEndpointOutput(webhook_endpoint_delete(endpoint_id=endpoint.pk, actor=request.actor)).data)


class EventListApi(ApiView):
    permission_classes = [capability_permission(Capability.EVENT_READ, merchant=True)]

    @extend_schema(parameters=[EventListFilters], responses={200: EventOutput(many=True)},
                   summary="List events, newest first (the webhook payloads)")
    def get(self, request):
        filters = self.validated_query(EventListFilters)
        query = events_list(
            scope=merchant_visible_to(scope=request.scope, livemode=filters.get("livemode")), event_type=filters.get("type"),
            created_gte=filters.get("created_gte"), created_lte=filters.get("created_lte"),
        )
        return self.paginate(query, EventOutput)


class EventDetailApi(ApiView):
    permission_classes = [capability_permission(Capability.EVENT_READ, merchant=True)]

    @extend_schema(responses={200: EventOutput}, operation_id="payment_events_detail", summary="Retrieve an event")
    def get(self, request, event_id: str):
        return Response(EventOutput(event_get(public_id=event_id, scope=request.scope)).data)


class WebhookDeliveryListApi(ApiView):
    permission_classes = [capability_permission(Capability.WEBHOOK_READ, merchant=True)]

    @extend_schema(parameters=[WebhookDeliveryListFilters], responses={200: WebhookDeliveryOutput(many=True)},
                   summary="List webhook deliveries")
    def get(self, request):
        filters = self.validated_query(WebhookDeliveryListFilters)
        scope = merchant_visible_to(scope=request.scope, livemode=filters.pop("livemode", None))
        return self.paginate(webhook_deliveries_list(scope=scope, **filters), WebhookDeliveryOutput)


class WebhookDeliveryResendApi(ApiView):
    permission_classes = [capability_permission(Capability.WEBHOOK_RESEND, merchant=True)]

    @extend_schema(request=EmptyInput, responses={200: WebhookDeliveryOutput}, summary="Re-send a dead or delivered delivery")
    def post(self, request, delivery_id: str):
        self.validated(EmptyInput)
        delivery = webhook_delivery_get(public_id=delivery_id, scope=request.scope)
        return Response(WebhookDeliveryOutput(webhook_delivery_resend(delivery_id=delivery.pk, actor=request.actor)).data)
