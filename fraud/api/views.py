"""Merchant fraud API: rules (and testing one against history), allow/block lists, the
review queue. Thin views: parse, call one service or selector, render.

Who may do what: a merchant API key manages its own rules and lists (of its mode) and
decides its own reviews; platform rules are read-only to it. Staff read everything
(fraud.read), change platform rules (fraud.rules) and decide reviews (fraud.review);
staff add to a merchant's lists in the admin (fraud.lists)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.selectors import merchant_visible_to
from core.api.permissions import MerchantOnly, capability_permission
from core.api.views import IDEMPOTENCY_HEADER, ApiView, idempotent
from core.errors import NotFound, PermissionDenied
from core.permissions import Capability
from fraud.api.serializers import (
    ListItemCreateInput,
    ListItemListFilters,
    ReviewDecisionInput,
    ReviewListFilters,
    RuleCreateInput,
    RuleListFilters,
    RuleTestInput,
    RuleUpdateInput,
)
from fraud.reviews.services import review_approve, review_reject
from fraud.screening.backtest import rule_backtest
from fraud.screening.language.attributes import LISTS
from fraud.screening.lists import list_item_add, list_item_remove
from fraud.screening.representations import (
    BacktestOutput,
    ListItemOutput,
    ListSummaryOutput,
    ReviewOutput,
    RuleDetailOutput,
    RuleOutput,
)
from fraud.screening.rules import rule_create, rule_disable, rule_update
from fraud.screening.selectors import (
    list_item_get,
    list_items,
    list_summaries,
    review_get,
    reviews_list,
    rule_get,
    rules_list,
)

READ = capability_permission(Capability.FRAUD_READ, merchant=True)
RULES = capability_permission(Capability.FRAUD_RULES, merchant=True)
REVIEW = capability_permission(Capability.FRAUD_REVIEW, merchant=True)
LIST_NAME = OpenApiParameter("list_name", OpenApiTypes.STR, OpenApiParameter.PATH, enum=sorted(LISTS),
                             description="The list: allowed_… or blocked_… emails, card_fingerprints, ip_addresses, "
                                         "customers, countries.")


def _list_name(name: str) -> str:
    if name not in LISTS:
        raise NotFound(f"No such list: '{name[:64]}' (the lists are {', '.join(sorted(LISTS))})", param="list_name")
    return name


class RuleListCreateApi(ApiView):
    def get_permissions(self):
        return [RULES()] if self.request.method == "POST" else [READ()]

    @extend_schema(request=RuleCreateInput, responses={201: RuleDetailOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Add a fraud rule (a staff token adds a platform rule)")
    @idempotent
    def post(self, request):
        data = self.validated(RuleCreateInput)
        rule = rule_create(merchant=request.merchant, livemode=request.livemode, source=data["rule"], mode=data["mode"],
                           description=data["description"], actor=request.actor)
        return Response(RuleDetailOutput(rule_get(public_id=rule.public_id, scope=request.scope)).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[RuleListFilters], responses={200: RuleOutput(many=True)},
                   summary="List fraud rules: the merchant's and the platform's")
    def get(self, request):
        filters = self.validated_query(RuleListFilters)
        scope = merchant_visible_to(scope=request.scope, livemode=filters.get("livemode"))
        return self.paginate(rules_list(scope=scope, mode=filters.get("mode"), platform=filters.get("platform")), RuleOutput)


class RuleDetailApi(ApiView):
    def get_permissions(self):
        return [READ()] if self.request.method == "GET" else [RULES()]

    def _changeable(self, request, rule_id: str):
        rule = rule_get(public_id=rule_id, scope=request.scope)
        if rule.is_platform and request.merchant is not None:
            raise PermissionDenied("Platform rules are FlowPay's: shadow or override them with a rule of your own.")
        return rule

    @extend_schema(responses={200: RuleDetailOutput}, summary="Retrieve a fraud rule with its versions")
    def get(self, request, rule_id: str):
        return Response(RuleDetailOutput(rule_get(public_id=rule_id, scope=request.scope)).data)

    @extend_schema(request=RuleUpdateInput, responses={200: RuleDetailOutput},
                   summary="Change a fraud rule's text, mode or description (a new version)")
    def patch(self, request, rule_id: str):
        data = self.validated(RuleUpdateInput)
        rule = self._changeable(request, rule_id)
        rule_update(rule_id=rule.pk, actor=request.actor, source=data.get("rule"), mode=data.get("mode"),
                    description=data.get("description"))
        return Response(RuleDetailOutput(rule_get(public_id=rule_id, scope=request.scope)).data)

    @extend_schema(responses={200: RuleDetailOutput}, summary="Disable a fraud rule (a new version; the history stays)")
    def delete(self, request, rule_id: str):
        rule = self._changeable(request, rule_id)
        rule_disable(rule_id=rule.pk, actor=request.actor)
        return Response(RuleDetailOutput(rule_get(public_id=rule_id, scope=request.scope)).data)


class RuleTestApi(ApiView):
    """Evaluate a rule against the payments screened over the last `days` days (their
    signals as screened, the lists as they are now): how many it would match, and which.
    Nothing is saved."""

    permission_classes = [READ]

    @extend_schema(request=RuleTestInput, responses={200: BacktestOutput}, summary="Test a fraud rule against history")
    def post(self, request):
        data = self.validated(RuleTestInput)
        result = rule_backtest(scope=request.scope, source=data["rule"], days=data["days"], limit=data["limit"])
        return Response(BacktestOutput(result).data)


class FraudListIndexApi(ApiView):
    permission_classes = [READ]

    @extend_schema(
        responses={200: inline_serializer("FraudListIndex", {
            "object": serializers.CharField(), "data": ListSummaryOutput(many=True)})},
        operation_id="payment_fraud_lists_index", summary="The allow and block lists, with their item counts",
    )
    def get(self, request):
        self.validated_query(ListItemListFilters)
        return Response({"object": "list", "data": ListSummaryOutput(list_summaries(scope=request.scope), many=True).data})


class FraudListItemsApi(ApiView):
    def get_permissions(self):
        return [MerchantOnly()] if self.request.method == "POST" else [READ()]

    @extend_schema(request=ListItemCreateInput, responses={201: ListItemOutput}, parameters=[LIST_NAME, IDEMPOTENCY_HEADER],
                   summary="Add a value to an allow or block list")
    @idempotent
    def post(self, request, list_name: str):
        name = _list_name(list_name)
        data = self.validated(ListItemCreateInput)
        item = list_item_add(merchant=request.merchant, livemode=request.livemode, list_name=name, value=data["value"],
                             reason=data["reason"], expires_at=data.get("expires_at"), actor=request.actor)
        return Response(ListItemOutput(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[LIST_NAME, ListItemListFilters], responses={200: ListItemOutput(many=True)},
                   summary="List the items of an allow or block list")
    def get(self, request, list_name: str):
        name = _list_name(list_name)
        filters = self.validated_query(ListItemListFilters)
        scope = merchant_visible_to(scope=request.scope, livemode=filters.get("livemode"))
        return self.paginate(list_items(scope=scope, list_name=name), ListItemOutput)


class FraudListItemDetailApi(ApiView):
    permission_classes = [MerchantOnly]

    @extend_schema(parameters=[LIST_NAME], responses={200: ListItemOutput}, summary="Remove a value from a list")
    def delete(self, request, list_name: str, item_id: str):
        item = list_item_get(public_id=item_id, scope=request.scope, list_name=_list_name(list_name))
        return Response(ListItemOutput(list_item_remove(item_id=item.pk, actor=request.actor)).data)


class ReviewListApi(ApiView):
    permission_classes = [READ]

    @extend_schema(parameters=[ReviewListFilters], responses={200: ReviewOutput(many=True)},
                   summary="List the reviews of payments screening held (open ones: ?status=open)")
    def get(self, request):
        filters = self.validated_query(ReviewListFilters)
        scope = merchant_visible_to(scope=request.scope, livemode=filters.get("livemode"))
        return self.paginate(reviews_list(scope=scope, statuses=filters.get("status")), ReviewOutput)


class ReviewDetailApi(ApiView):
    permission_classes = [READ]

    @extend_schema(responses={200: ReviewOutput}, summary="Retrieve a review")
    def get(self, request, review_id: str):
        return Response(ReviewOutput(review_get(public_id=review_id, scope=request.scope)).data)


class ReviewApproveApi(ApiView):
    """Capture the held payment and close the review. 409 when the review is already decided
    or being decided by someone else, or the payment cannot be captured (yet)."""

    permission_classes = [REVIEW]

    @extend_schema(request=ReviewDecisionInput, responses={200: ReviewOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Approve a held payment (captures it)")
    @idempotent
    def post(self, request, review_id: str):
        data = self.validated(ReviewDecisionInput)
        review = review_get(public_id=review_id, scope=request.scope)
        review_approve(review_id=review.pk, actor=request.actor, note=data["note"])
        return Response(ReviewOutput(review_get(public_id=review_id, scope=request.scope)).data)


class ReviewRejectApi(ApiView):
    """Cancel the held payment (refund it if it was captured) and close the review. 409 as
    for approve."""

    permission_classes = [REVIEW]

    @extend_schema(request=ReviewDecisionInput, responses={200: ReviewOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Reject a held payment (cancels it, or refunds it if captured)")
    @idempotent
    def post(self, request, review_id: str):
        data = self.validated(ReviewDecisionInput)
        review = review_get(public_id=review_id, scope=request.scope)
        review_reject(review_id=review.pk, actor=request.actor, note=data["note"])
        return Response(ReviewOutput(review_get(public_id=review_id, scope=request.scope)).data)

