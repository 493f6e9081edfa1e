import os

from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from core.observability.metrics import (
    DatabaseUpCollector,
    GatewayErrorRateCollector,
    PaymentRatesCollector,
    PaymentsInflightCollector,
    RebillQueueDepthCollector,
)

# Gauges read from the database at scrape time live in their own registry, so that they
# are reported once whatever the number of worker processes.
_database_registry = CollectorRegistry(auto_describe=False)
_database_registry.register(DatabaseUpCollector())
_database_registry.register(PaymentsInflightCollector())
_database_registry.register(PaymentRatesCollector())
_database_registry.register(GatewayErrorRateCollector())
_database_registry.register(RebillQueueDepthCollector())


def metrics_view(request):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry) + generate_latest(_database_registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
