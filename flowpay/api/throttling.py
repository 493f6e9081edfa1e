from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key or staff token (FLOWPAY_API_RATE_LIMIT, e.g. 6000/min)."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if request.auth is None or not hasattr(request.auth, "pk"):
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"{type(request.auth).__name__}:{request.auth.pk}"}
