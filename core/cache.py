"""The shared cache (Redis in production): Django's Redis backend, with one redis-py client
per cache instead of one per call, and pipelines for the hot paths that send several
commands at once (the rate limit, the gateway statistics and the circuit breaker's success).

A pipeline uses the cache's own keys (`cache_key`: its prefix and version) and stores
integers as integers, as Django's Redis backend does, so what a pipeline writes reads back
through django.core.cache and the other way round. Without Redis (`make run` with its file
cache) there is no pipeline: `cache_pipeline()` is None and callers use the cache API.
"""

from __future__ import annotations

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[object, object] = {}

    def get_client(self, key=None, *, write=False):
        # A redis-py client is thread-safe and holds nothing but its connection pool: made
        # once per pool rather than on every call (building one costs more than a GET).
        pool = self._get_connection_pool(write)
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient

    def pipeline(self):
        """A redis-py pipeline (not a MULTI transaction) on the cache's primary server."""
        return self._cache.get_client(write=True).pipeline(transaction=False)


def cache_pipeline():
    """A pipeline on the shared cache, or None when the cache is not Redis."""
    backend = caches["default"]
    return backend.pipeline() if isinstance(backend, RedisCache) else None


def cache_key(name: str) -> str:
    """The key the shared cache stores `name` under (what a pipeline must use)."""
    return caches["default"].make_and_validate_key(name)
