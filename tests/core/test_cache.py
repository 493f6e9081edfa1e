"""The shared cache's pipelines (core.cache) write the cache's own keys and values: what a
pipeline counts reads back through django.core.cache, and the other way round; and one
redis-py client serves every call."""

from django.core.cache import cache, caches

from core.cache import cache_key, cache_pipeline
from gateways.stats import BUCKET_TTL_SECONDS, gateway_recent_stats, gateway_stats_record


def test_a_pipeline_and_the_cache_api_read_each_others_values():
    pipeline = cache_pipeline()
    pipeline.incrby(cache_key("counted"), 5)
    pipeline.execute()
    assert cache.get("counted") == 5
    assert cache.incr("counted", 2) == 7
    cache.set("stored", 11)
    assert int(caches["default"]._cache.get_client().get(cache_key("stored"))) == 11


def test_one_client_serves_every_call():
    client = caches["default"]._cache
    assert client.get_client(write=True) is client.get_client(write=True) is client.get_client()


def test_gateway_statistics_counted_in_one_round_trip_expire_with_their_bucket():
    gateway_stats_record(gateway="simulator", operation="authorize", error=False, latency_ms=40)
    gateway_stats_record(gateway="simulator", operation="authorize", error=True, latency_ms=60)
    stats = gateway_recent_stats("simulator").by_operation["authorize"]
    assert (stats.calls, stats.errors, stats.latency_ms_total) == (2, 1, 100)
    redis = caches["default"]._cache.get_client()
    keys = redis.keys(cache_key("flowpay:gwstats:simulator:authorize:*"))
    assert len(keys) == 3 and all(0 < redis.ttl(key) <= BUCKET_TTL_SECONDS for key in keys)
