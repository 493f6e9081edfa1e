"""Who may read the monitoring endpoints: the Prometheus metrics and the detailed health,
which name gateways, circuits, error rates and internal failures. Liveness and readiness
(/healthz, /readyz) stay open to every probe.

Rule: a request is served when it carries the scrape token (`Authorization: Bearer
<FLOWPAY_METRICS_TOKEN>`, when one is set), or when its client (core.network.client_ip)
is in FLOWPAY_METRICS_ALLOWED_NETWORKS (by default loopback and the private ranges, where
Prometheus and the orchestrator's probes run). A request that came through a proxy we do
not trust (it has an X-Forwarded-For header, but its peer is not in FLOWPAY_TRUSTED_PROXIES)
has no address we can vouch for: a load balancer on a private address would otherwise make
every public request look private. It is served with the token only. Anything else gets
403 in the API's error shape.
"""

import functools
import hmac

from django.conf import settings
from django.http import JsonResponse

from core.api.errors import error_body
from core.errors import ErrorCode
from core.network import address_in, client_ip


def _has_scrape_token(request) -> bool:
    token = settings.FLOWPAY_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


def _from_monitoring_network(request) -> bool:
    forwarded = "HTTP_X_FORWARDED_FOR" in request.META
    if forwarded and not address_in(request.META.get("REMOTE_ADDR"), settings.FLOWPAY_TRUSTED_PROXIES):
        return False
    return address_in(client_ip(request), settings.FLOWPAY_METRICS_ALLOWED_NETWORKS)


def monitoring_access_allowed(request) -> bool:
    return _has_scrape_token(request) or _from_monitoring_network(request)


def monitoring_only(view):
    """Serves the view to monitoring only (see the module docstring)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not monitoring_access_allowed(request):
            message = "This endpoint is for monitoring: send the scrape token, or call from a monitoring network."
            return JsonResponse(error_body(type="permission_error", code=ErrorCode.PERMISSION_DENIED, message=message), status=403)
        return view(request, *args, **kwargs)

    return wrapper
