import math

from rest_framework.throttling import SimpleRateThrottle

from core.cache import cache_key, cache_pipeline


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key or staff token (FLOWPAY_API_RATE_LIMIT, e.g. 6000/min).

    On Redis the requests are counted in fixed windows of the rate's duration, and the
    limit applies to a sliding window estimated from them: the current window's count plus
    the previous window's, weighted by the share of it still within the last `duration`
    seconds. One round trip per request whatever the rate (DRF's own throttle reads and
    rewrites the list of every request's time within the window: thousands at 6000/min).
    A refused request is not counted, as DRF counts only the requests it lets through.
    Without Redis (`make run`'s file cache), DRF's own throttle."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        credential = request.auth
        if credential is None or not hasattr(credential, "key_hash"):
            return None
        # The digest identifies the credential across every process and database alias.
        return self.cache_format % {"scope": self.scope, "ident": credential.key_hash[:32]}

    def allow_request(self, request, view):
        pipeline = cache_pipeline() if self.rate is not None else None
        if pipeline is None:
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        current = cache_key(f"{self.key}:{window}")
        pipeline.incr(current)
        pipeline.expire(current, 2 * self.duration, nx=True)  # lives while it is the current or previous window
        pipeline.get(cache_key(f"{self.key}:{window - 1}"))
        count, _, previous = pipeline.execute()
        self.elapsed = now - window * self.duration  # into the current window
        self.previous_count = int(previous or 0)
        if self._estimate(count) <= self.num_requests:
            return True
        undo = cache_pipeline()
        undo.decr(current)
        undo.execute()
        self.count = count - 1
        return self.throttle_failure()

    def _estimate(self, count: int) -> float:
        return self.previous_count * (1 - self.elapsed / self.duration) + count

    def wait(self):
        """Seconds until one more request fits in the estimate (at least 1)."""
        if not hasattr(self, "count"):
            return super().wait()
        duration, allowed = self.duration, self.num_requests - 1  # what the others may count
        if self.count <= allowed and self.previous_count:
            # The previous window's weight decays until the estimate has room.
            seconds = duration * (1 - (allowed - self.count) / self.previous_count) - self.elapsed
        else:
            # This window must end, then its own weight decay as the previous window's.
            seconds = duration - self.elapsed + duration * (1 - allowed / max(self.count, 1))
        return max(1, math.ceil(seconds))
