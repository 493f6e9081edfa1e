"""The gateways page (backoffice.gateways: operator, admin) and its buttons, which call the
same services as the runbook's internal endpoints (backoffice.ops.services): the same
audit entries, and every web and worker process follows within
FLOWPAY_RUNTIME_REFRESH_SECONDS (core.runtime). The buttons need the ops.* capabilities
(operators); each asks for a reason."""

from __future__ import annotations

from fractions import Fraction

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from backoffice.dashboard.display import percent
from backoffice.dashboard.gateways_selectors import gateways_state
from backoffice.ops import services
from core.admin import staff_actor, staff_can
from core.errors import FlowPayError
from core.permissions import Capability

# action -> (capability, label, service call taking (form data, reason, actor))
ACTIONS = {
    "switch-gateway": (Capability.OPS_SWITCH_GATEWAY, "Switch the primary gateway",
                       lambda data, reason, actor: services.ops_switch_gateway(
                           primary_gateway=data["primary_gateway"], reason=reason, actor=actor)),
    "enable-fallback": (Capability.OPS_SWITCH_GATEWAY, "Enable fallback",
                        lambda data, reason, actor: services.ops_set_fallback_mode(enabled=True, reason=reason, actor=actor)),
    "disable-fallback": (Capability.OPS_SWITCH_GATEWAY, "Disable fallback",
                         lambda data, reason, actor: services.ops_set_fallback_mode(enabled=False, reason=reason, actor=actor)),
    "enable-simplified-flow": (Capability.OPS_SWITCH_GATEWAY, "Enable simplified flow",
                               lambda data, reason, actor: services.ops_set_simplified_flow(enabled=True, reason=reason, actor=actor)),
    "disable-simplified-flow": (Capability.OPS_SWITCH_GATEWAY, "Disable simplified flow",
                                lambda data, reason, actor: services.ops_set_simplified_flow(enabled=False, reason=reason, actor=actor)),
    "reload-api-keys": (Capability.OPS_SYSTEM, "Reload API keys",
                        lambda data, reason, actor: services.ops_reload_api_keys(reason=reason, actor=actor)),
}


class GatewayActionForm(forms.Form):
    action = forms.ChoiceField(choices=[(key, label) for key, (_, label, _) in ACTIONS.items()])
    reason = forms.CharField(max_length=500, strip=True, error_messages={"required": "Give a reason: it goes into the audit log."})
    primary_gateway = forms.CharField(max_length=40, required=False)

    def clean(self):
        data = super().clean()
        if data.get("action") == "switch-gateway" and not data.get("primary_gateway"):
            self.add_error("primary_gateway", "Choose the gateway to make primary.")
        return data


def _context(request, site, form: GatewayActionForm | None = None) -> dict:
    state = gateways_state(today=timezone.now().date())
    may = {
        "switch": staff_can(request, Capability.OPS_SWITCH_GATEWAY),
        "system": staff_can(request, Capability.OPS_SYSTEM),
    }
    rows = [{"row": row, "error_rate": percent(_fraction(row.errors, row.calls))} for row in state.gateways]
    return {**site.each_context(request), "title": "Gateways", "state": state, "rows": rows, "may": may, "form": form}


def _fraction(part: int, whole: int) -> Fraction | None:
    return Fraction(part, whole) if whole else None


@require_http_methods(["GET", "POST"])
def gateways_page(request, site):
    if not staff_can(request, Capability.BACKOFFICE_GATEWAYS):
        raise PermissionDenied
    if request.method == "GET":
        return TemplateResponse(request, "admin/dashboard/gateways.html", _context(request, site))
    form = GatewayActionForm(request.POST)
    if not form.is_valid():
        return TemplateResponse(request, "admin/dashboard/gateways.html", _context(request, site, form), status=400)
    capability, label, call = ACTIONS[form.cleaned_data["action"]]
    if not staff_can(request, capability):
        raise PermissionDenied
    try:
        call(form.cleaned_data, form.cleaned_data["reason"], staff_actor(request))
    except FlowPayError as exc:
        form.add_error(None, exc.message)
        return TemplateResponse(request, "admin/dashboard/gateways.html", _context(request, site, form), status=400)
    messages.success(request, f"{label}: done. Every process follows within seconds.")
    return redirect("admin:dashboard_gateways")
