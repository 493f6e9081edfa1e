"""Reconciliation API for finance and admin staff tokens (merchant keys get 403): runs,
items with filters, and the resolution workflow. Thin views: parse, call one service or
selector, render."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from core.api.permissions import capability_permission
from core.api.serializers import EmptyInput
from core.api.views import IDEMPOTENCY_HEADER, ApiView, idempotent
from core.errors import NotFound
from core.permissions import Capability
from reconciliation.api.serializers import (
    ItemInvestigateInput,
    ItemListFilters,
    ItemRejectInput,
    ItemResolveInput,
    RunListFilters,
)
from reconciliation.models import ItemState
from reconciliation.representations import ReconciliationItemOutput, ReconciliationRunOutput
from reconciliation.selectors import reconciliation_item_get, reconciliation_items_list, reconciliation_runs_list
from reconciliation.services.items import (
    reconciliation_item_approve_adjustment,
    reconciliation_item_investigate,
    reconciliation_item_reject_adjustment,
    reconciliation_item_resolve,
)

Read = capability_permission(Capability.RECONCILIATION_READ)
Resolve = capability_permission(Capability.RECONCILIATION_RESOLVE)


class ReconciliationApiView(ApiView):
    def render_item(self, item, *, status_code: int = status.HTTP_200_OK) -> Response:
        item = reconciliation_item_get(public_id=item.public_id)  # re-read with its relations
        return Response(ReconciliationItemOutput(item).data, status=status_code)


class RunListApi(ReconciliationApiView):
    permission_classes = [Read]

    @extend_schema(parameters=[RunListFilters], responses={200: ReconciliationRunOutput(many=True)},
                   summary="List reconciliation runs (filters: gateway, date, dateGte, dateLte)")
    def get(self, request):
        filters = self.validated_query(RunListFilters)
        return self.paginate(reconciliation_runs_list(**filters), ReconciliationRunOutput)


class RunDetailApi(ReconciliationApiView):
    permission_classes = [Read]

    @extend_schema(responses={200: ReconciliationRunOutput}, summary="Retrieve a reconciliation run")
    def get(self, request, run_id: str):
        run = reconciliation_runs_list().filter(public_id=run_id).first()
        if run is None:
            raise NotFound(f"No such reconciliation run: '{run_id[:64]}'", param="id")
        return Response(ReconciliationRunOutput(run).data)


class ItemListApi(ReconciliationApiView):
    permission_classes = [Read]

    @extend_schema(parameters=[ItemListFilters], responses={200: ReconciliationItemOutput(many=True)},
                   summary="List reconciliation items (filters: gateway, date, category, state, run)")
    def get(self, request):
        filters = self.validated_query(ItemListFilters)
        query = reconciliation_items_list(
            gateway=filters.get("gateway"), date=filters.get("date"), categories=filters.get("category"),
            states=filters.get("state"), run_public_id=filters.get("run"),
        )
        return self.paginate(query, ReconciliationItemOutput)


class ItemDetailApi(ReconciliationApiView):
    permission_classes = [Read]

    @extend_schema(responses={200: ReconciliationItemOutput}, summary="Retrieve a reconciliation item")
    def get(self, request, item_id: str):
        return self.render_item(reconciliation_item_get(public_id=item_id))


class ItemInvestigateApi(ReconciliationApiView):
    permission_classes = [Resolve]

    @extend_schema(request=ItemInvestigateInput, responses={200: ReconciliationItemOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Start investigating an item: open → investigating (finance, admin)")
    @idempotent
    def post(self, request, item_id: str):
        data = self.validated(ItemInvestigateInput)
        item = reconciliation_item_get(public_id=item_id)
        return self.render_item(reconciliation_item_investigate(item_id=item.pk, actor=request.actor, note=data["note"]))


class ItemResolveApi(ReconciliationApiView):
    """Resolve or ignore an item, with a reason. A ledger adjustment is only requested (202):
    a second finance or admin user approves it."""

    permission_classes = [Resolve]

    @extend_schema(request=ItemResolveInput, responses={200: ReconciliationItemOutput, 202: ReconciliationItemOutput},
                   parameters=[IDEMPOTENCY_HEADER], summary="Resolve a reconciliation item (finance, admin)")
    @idempotent
    def post(self, request, item_id: str):
        data = self.validated(ItemResolveInput)
        item = reconciliation_item_get(public_id=item_id)
        item = reconciliation_item_resolve(
            item_id=item.pk, resolution=data["resolution"], reason=data["reason"], actor=request.actor,
            merchant_public_id=data.get("merchant"),
        )
        pending = item.state == ItemState.INVESTIGATING and bool(item.pending_resolution)
        return self.render_item(item, status_code=status.HTTP_202_ACCEPTED if pending else status.HTTP_200_OK)


class ItemApproveApi(ReconciliationApiView):
    """Four-eyes: a finance or admin user other than the requester approves the ledger adjustment."""

    permission_classes = [Resolve]

    @extend_schema(request=EmptyInput, responses={200: ReconciliationItemOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Approve the ledger adjustment of an item (a second finance or admin user)")
    @idempotent
    def post(self, request, item_id: str):
        self.validated(EmptyInput)
        item = reconciliation_item_get(public_id=item_id)
        return self.render_item(reconciliation_item_approve_adjustment(item_id=item.pk, actor=request.actor))


class ItemRejectApi(ReconciliationApiView):
    permission_classes = [Resolve]

    @extend_schema(request=ItemRejectInput, responses={200: ReconciliationItemOutput}, parameters=[IDEMPOTENCY_HEADER],
                   summary="Reject the ledger adjustment requested on an item (finance, admin)")
    @idempotent
    def post(self, request, item_id: str):
        data = self.validated(ItemRejectInput)
        item = reconciliation_item_get(public_id=item_id)
        return self.render_item(reconciliation_item_reject_adjustment(item_id=item.pk, actor=request.actor,
                                                                       reason=data["reason"]))
