"""Merchant payments API: thin views that parse input, call one service or selector, and
render. Merchants see only their own objects; staff tokens may read across merchants."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.selectors import merchant_visible_to
from core.api.errors import exception_handler
from core.api.permissions import MerchantOnly, capability_permission
from core.api.schema import ERROR_STATUSES
from core.api.serializers import EmptyInput
from core.api.views import IDEMPOTENCY_HEADER, ApiView, idempotent
from core.errors import CardDeclined, ErrorCode, FraudBlocked
from core.network import client_ip
from core.permissions import Capability
from gateways.router import primary_gateway_name
from payments.api.serializers import (
    CustomerCreateInput,
    CustomerListFilters,
    PaymentMethodAttachInput,
    TransactionCaptureInput,
    TransactionCreateInput,
    TransactionListFilters,
)
from payments.models import Transaction, TransactionStatus
from payments.representations import (
    CustomerDetailOutput,
    CustomerOutput,
    PaymentMethodOutput,
    TransactionOutput,
    transaction_representation,
)
from payments.selectors import (
    customer_get,
    customers_list,
    payment_methods_for_customer,
    transaction_get,
    transactions_list,
)
from payments.services.customers import customer_create, payment_method_attach
from payments.services.screening import ScreeningContext
from payments.services.transactions import (
    PaymentInput,
    transaction_cancel,
    transaction_capture,
    transaction_create,
)

DECLINED = ERROR_STATUSES["402"]


def transaction_created_response(txn: Transaction, representation: dict) -> Response:
    """The answer to a create: 201 with the transaction, or 402 `card_declined` carrying it.
    transaction_create stores it as the Idempotency-Key's result in the database transaction
    that records the outcome."""
    if txn.status == TransactionStatus.FAILED and txn.failure_code:
        error = FraudBlocked if txn.failure_code == ErrorCode.FRAUD_BLOCKED else CardDeclined
        declined = error(txn.failure_message or "Your card was declined.", decline_code=txn.failure_code,
                         transaction_payload=representation)
        return exception_handler(declined, {})
    return Response(representation, status=status.HTTP_201_CREATED)


class TransactionListCreateApi(ApiView):
    def get_permissions(self):
        return [MerchantOnly()] if self.request.method == "POST" else [capability_permission(Capability.TRANSACTION_READ, merchant=True)()]

    @extend_schema(request=TransactionCreateInput, responses={201: TransactionOutput, 402: OpenApiResponse(description=DECLINED)},
                   parameters=[IDEMPOTENCY_HEADER], summary="Create a payment")
    @idempotent(answered_by_service=transaction_created_response)
    def post(self, request):
        data = self.validated(TransactionCreateInput)
        claim = self.idempotency_claim
        txn = transaction_create(
            merchant=request.merchant,
            payment=PaymentInput(
                amount=data["amount"], currency=data["currency"], payment_method=data["payment_method"],
                capture_method=data["capture_method"], customer=data.get("customer"),
                description=data["description"], metadata=data["metadata"],
                screening=ScreeningContext(email=data.get("email"), client_ip=data.get("client_ip") or _forwarded_client(request),
                                           billing_country=data.get("billing_country")),
            ),
            actor=request.actor,
            livemode=request.livemode,
            idempotency=claim,
        )
        if claim is not None and claim.answered:
            return claim.response  # rendered and stored with the outcome
        return transaction_created_response(txn, transaction_representation(txn))

    @extend_schema(parameters=[TransactionListFilters], responses={200: TransactionOutput(many=True)}, summary="List payments")
    def get(self, request):
        filters = self.validated_query(TransactionListFilters)
        query = transactions_list(
            scope=merchant_visible_to(
                scope=request.scope, merchant_public_id=filters.get("merchant"), livemode=filters.get("livemode"),
            ),
            statuses=filters.get("status"),
            gateway=filters.get("gateway"),
            customer_public_id=filters.get("customer"),
            created_gte=filters.get("created_gte"),
            created_lte=filters.get("created_lte"),
        )
        return self.paginate(query.select_related("merchant"), TransactionOutput)


def _forwarded_client(request) -> str | None:
    """The client address a trusted proxy forwarded (X-Forwarded-For), when there is one: a
    payment created from the customer's browser through the proxies. A merchant's server
    calling directly is not the customer: it sends `clientIp` instead."""
    address = client_ip(request)
    return address if address and address != request.META.get("REMOTE_ADDR") else None


class TransactionDetailApi(ApiView):
    permission_classes = [capability_permission(Capability.TRANSACTION_READ, merchant=True)]

    @extend_schema(responses={200: TransactionOutput}, summary="Retrieve a payment")
    def get(self, request, transaction_id: str):
        return Response(TransactionOutput(transaction_get(public_id=transaction_id, scope=request.scope)).data)


class TransactionCaptureApi(ApiView):
    permission_classes = [capability_permission(Capability.TRANSACTION_CAPTURE, merchant=True)]

    @extend_schema(request=TransactionCaptureInput, responses={200: TransactionOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Capture an authorized payment (optionally partially)")
    @idempotent
    def post(self, request, transaction_id: str):
        data = self.validated(TransactionCaptureInput)
        txn = transaction_get(public_id=transaction_id, scope=request.scope)
        txn = transaction_capture(transaction_id=txn.pk, amount=data.get("amount"), actor=request.actor)
        return Response(TransactionOutput(txn).data)


class TransactionCancelApi(ApiView):
    permission_classes = [capability_permission(Capability.TRANSACTION_CANCEL, merchant=True)]

    @extend_schema(request=EmptyInput, responses={200: TransactionOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Cancel (void) an authorized payment")
    @idempotent
    def post(self, request, transaction_id: str):
        self.validated(EmptyInput)
        txn = transaction_get(public_id=transaction_id, scope=request.scope)
        txn = transaction_cancel(transaction_id=txn.pk, actor=request.actor)
        return Response(TransactionOutput(txn).data)


class CustomerListCreateApi(ApiView):
    def get_permissions(self):
        return [MerchantOnly()] if self.request.method == "POST" else [capability_permission(Capability.CUSTOMER_READ, merchant=True)()]

    @extend_schema(request=CustomerCreateInput, responses={201: CustomerOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Create a customer")
    @idempotent
    def post(self, request):
        data = self.validated(CustomerCreateInput)
        customer = customer_create(
            merchant=request.merchant, livemode=request.livemode, actor=request.actor,
            idempotency_record_id=self.idempotency_record_id, **data
        )
        return Response(CustomerOutput(customer).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[CustomerListFilters], responses={200: CustomerOutput(many=True)}, summary="List customers")
    def get(self, request):
        filters = self.validated_query(CustomerListFilters)
        scope = merchant_visible_to(scope=request.scope, livemode=filters.get("livemode"))
        query = customers_list(scope=scope, email=filters.get("email"))
        if filters.get("created_gte"):
            query = query.filter(created_at__gte=filters["created_gte"])
        if filters.get("created_lte"):
            query = query.filter(created_at__lte=filters["created_lte"])
        return self.paginate(query, CustomerOutput)


class CustomerDetailApi(ApiView):
    permission_classes = [capability_permission(Capability.CUSTOMER_READ, merchant=True)]

    @extend_schema(responses={200: CustomerDetailOutput}, summary="Retrieve a customer with its saved payment methods")
    def get(self, request, customer_id: str):
        return Response(CustomerDetailOutput(customer_get(public_id=customer_id, scope=request.scope)).data)


class CustomerPaymentMethodsApi(ApiView):
    def get_permissions(self):
        return [MerchantOnly()] if self.request.method == "POST" else [capability_permission(Capability.CUSTOMER_READ, merchant=True)()]

    @extend_schema(request=PaymentMethodAttachInput, responses={201: PaymentMethodOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Save a gateway token for a customer")
    @idempotent
    def post(self, request, customer_id: str):
        data = self.validated(PaymentMethodAttachInput)
        customer = customer_get(public_id=customer_id, scope=request.scope)
        method = payment_method_attach(
            customer=customer, gateway=data.get("gateway") or primary_gateway_name(),
            gateway_token=data["token"], brand=data["brand"], last4=data["last4"], actor=request.actor,
            idempotency_record_id=self.idempotency_record_id,
        )
        return Response(PaymentMethodOutput(method).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: PaymentMethodOutput(many=True)}, summary="List a customer's saved payment methods")
    def get(self, request, customer_id: str):
        customer = customer_get(public_id=customer_id, scope=request.scope)
        return self.paginate(payment_methods_for_customer(customer=customer), PaymentMethodOutput)
