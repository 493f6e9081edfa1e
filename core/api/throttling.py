from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key or staff token (FLOWPAY_API_RATE_LIMIT, e.g. 6000/min)."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        credential = request.auth
        if credential is None or not hasattr(credential, "key_hash"):
            return None
        # The digest identifies the credential across every process and database alias.
        return self.cache_format % {"scope": self.scope, "ident": credential.key_hash[:32]}
