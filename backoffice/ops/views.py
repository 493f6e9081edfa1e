"""Internal operator endpoints of the runbook (staff tokens holding ops.switch_gateway or
ops.system: the operator role)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from backoffice.ops import services
from core.api.permissions import capability_permission
from core.api.serializers import InputSerializer
from core.api.views import ApiView
from core.permissions import Capability

GatewaySwitchers = capability_permission(Capability.OPS_SWITCH_GATEWAY)
SystemOperators = capability_permission(Capability.OPS_SYSTEM)


class ReasonInput(InputSerializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class SwitchGatewayInput(ReasonInput):
    primary_gateway = serializers.CharField(max_length=40)


class OpsStateOutput(serializers.Serializer):
    primary_gateway = serializers.CharField()
    enabled_gateways = serializers.ListField(child=serializers.CharField())
    fallback_mode = serializers.BooleanField()
    simplified_flow = serializers.BooleanField()
    credentials_version = serializers.IntegerField()
    db_connections_version = serializers.IntegerField()


class OpsApiView(ApiView):
    permission_classes = [SystemOperators]  # each endpoint below names its own capability

    def reason(self) -> str:
        # The runbook's curl calls send no body: an empty body is an empty reason.
        return self.validated(ReasonInput, data=self.request.data or {})["reason"]


class SwitchGatewayApi(OpsApiView):
    permission_classes = [GatewaySwitchers]

    @extend_schema(request=SwitchGatewayInput, responses={200: OpsStateOutput}, summary="Switch the primary gateway")
    def post(self, request):
        data = self.validated(SwitchGatewayInput)
        return Response(services.ops_switch_gateway(primary_gateway=data["primary_gateway"], reason=data["reason"], actor=request.actor))


def _toggle(service, enabled: bool, summary: str):
    class ToggleApi(OpsApiView):
        permission_classes = [GatewaySwitchers]

        @extend_schema(request=ReasonInput, responses={200: OpsStateOutput}, summary=summary)
        def post(self, request):
            return Response(service(enabled=enabled, reason=self.reason(), actor=request.actor))

    ToggleApi.__name__ = ToggleApi.__qualname__ = "".join(w.title() for w in summary.split()) + "Api"
    return ToggleApi


EnableFallbackApi = _toggle(services.ops_set_fallback_mode, True, "Enable fallback gateway")
DisableFallbackApi = _toggle(services.ops_set_fallback_mode, False, "Disable fallback gateway")
EnableSimplifiedFlowApi = _toggle(services.ops_set_simplified_flow, True, "Enable simplified flow")
DisableSimplifiedFlowApi = _toggle(services.ops_set_simplified_flow, False, "Disable simplified flow")


class ReloadApiKeysApi(OpsApiView):
    permission_classes = [SystemOperators]

    @extend_schema(request=ReasonInput, responses={200: OpsStateOutput}, summary="Reload gateway API keys in every process")
    def post(self, request):
        return Response(services.ops_reload_api_keys(reason=self.reason(), actor=request.actor))


class RefreshDbConnectionsApi(OpsApiView):
    permission_classes = [SystemOperators]

    @extend_schema(request=ReasonInput, responses={200: OpsStateOutput}, summary="Reopen database connections in every process")
    def post(self, request):
        return Response(services.ops_refresh_db_connections(reason=self.reason(), actor=request.actor))
