"""Balance and payouts API: thin views that parse input, call one service or selector, and
render. Merchants see their own balance, balance transactions and payouts (in their key's
mode); staff tokens holding ledger.read read any merchant's (the balance names one with
?merchant=mer_…). Only merchants create payouts."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.selectors import merchant_visible_to
from core.api.permissions import MerchantOnly, capability_permission
from core.api.views import IDEMPOTENCY_HEADER, ApiView, idempotent
from core.errors import ErrorCode, InvalidRequest
from core.permissions import Capability
from ledger.api.serializers import BalanceFilters, BalanceTransactionListFilters, PayoutCreateInput, PayoutListFilters
from ledger.representations import BalanceOutput, BalanceTransactionOutput, PayoutOutput
from ledger.selectors import (
    balance_transaction_get,
    balance_transactions_list,
    merchant_balances,
    payout_get,
    payouts_list,
)
from ledger.services.payouts import payout_create

LEDGER_READERS = capability_permission(Capability.LEDGER_READ, merchant=True)


class BalanceApi(ApiView):
    permission_classes = [LEDGER_READERS]

    @extend_schema(parameters=[BalanceFilters], responses={200: BalanceOutput},
                   summary="Retrieve the balance: available, pending and reserved funds per currency")
    def get(self, request):
        filters = self.validated_query(BalanceFilters)
        merchant, livemode = request.merchant, request.livemode
        if merchant is None:  # staff: the merchant is named
            if not filters.get("merchant"):
                raise InvalidRequest("Name the merchant: ?merchant=mer_….", code=ErrorCode.PARAMETER_MISSING, param="merchant")
            scope = merchant_visible_to(scope=request.scope, merchant_public_id=filters["merchant"])
            if scope.merchant.pk == -1:
                raise InvalidRequest(f"No such merchant: '{filters['merchant'][:40]}'", code=ErrorCode.RESOURCE_MISSING,
                                     param="merchant")
            merchant, livemode = scope.merchant, filters["livemode"]
        balances = merchant_balances(merchant_id=merchant.pk, livemode=livemode)
        body = {
            "livemode": livemode, "merchant": merchant.public_id,
            "available": [{"amount": b.available, "currency": b.currency} for b in balances],
            "pending": [{"amount": b.pending, "currency": b.currency} for b in balances],
            "reserved": [{"amount": b.reserved, "currency": b.currency} for b in balances],
        }
        return Response(BalanceOutput(body).data)


class BalanceTransactionListApi(ApiView):
    permission_classes = [LEDGER_READERS]

    @extend_schema(parameters=[BalanceTransactionListFilters], responses={200: BalanceTransactionOutput(many=True)},
                   summary="List balance transactions (filters: type, currency, source, payout, created range)")
    def get(self, request):
        filters = self.validated_query(BalanceTransactionListFilters)
        query = balance_transactions_list(
            scope=merchant_visible_to(
                scope=request.scope, merchant_public_id=filters.get("merchant"), livemode=filters.get("livemode"),
            ),
            types=filters.get("type"),
            currency=filters.get("currency"),
            source=filters.get("source"),
            payout_public_id=filters.get("payout"),
            created_gte=filters.get("created_gte"),
            created_lte=filters.get("created_lte"),
        )
        return self.paginate(query, BalanceTransactionOutput)


class BalanceTransactionDetailApi(ApiView):
    permission_classes = [LEDGER_READERS]

    @extend_schema(responses={200: BalanceTransactionOutput}, summary="Retrieve a balance transaction")
    def get(self, request, balance_transaction_id: str):
        return Response(BalanceTransactionOutput(
            balance_transaction_get(public_id=balance_transaction_id, scope=request.scope)
        ).data)


class PayoutListCreateApi(ApiView):
    def get_permissions(self):
        return [MerchantOnly()] if self.request.method == "POST" else [LEDGER_READERS()]

    @extend_schema(request=PayoutCreateInput, responses={201: PayoutOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Pay out available funds to the merchant's bank")
    @idempotent
    def post(self, request):
        data = self.validated(PayoutCreateInput)
        payout = payout_create(
            merchant_id=request.merchant.pk, livemode=request.livemode, amount=data["amount"], currency=data["currency"],
            description=data["description"], actor=request.actor, idempotency_record_id=self.idempotency_record_id,
        )
        payout = payout_get(public_id=payout.public_id, scope=request.scope)
        return Response(PayoutOutput(payout).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[PayoutListFilters], responses={200: PayoutOutput(many=True)},
                   summary="List payouts (filters: status, currency, created range)")
    def get(self, request):
        filters = self.validated_query(PayoutListFilters)
        query = payouts_list(
            scope=merchant_visible_to(
                scope=request.scope, merchant_public_id=filters.get("merchant"), livemode=filters.get("livemode"),
            ),
            statuses=filters.get("status"),
            currency=filters.get("currency"),
            created_gte=filters.get("created_gte"),
            created_lte=filters.get("created_lte"),
        )
        return self.paginate(query, PayoutOutput)


class PayoutDetailApi(ApiView):
    permission_classes = [LEDGER_READERS]

    @extend_schema(responses={200: PayoutOutput}, summary="Retrieve a payout")
    def get(self, request, payout_id: str):
        return Response(PayoutOutput(payout_get(public_id=payout_id, scope=request.scope)).data)
