"""Prometheus metrics of the payment flow (runbook and scaling-chapter names).

Counters and histograms work under several gunicorn workers when PROMETHEUS_MULTIPROC_DIR
is set. Gauges that describe stored state (payments in flight) are computed from the
database at scrape time, so every process reports the same truth.
"""

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 30, 60)

# Time from accepting a payment request to its gateway outcome (seconds).
payment_processing_latency = Histogram(
    "payment_processing_latency",
    "Time to process a payment, in seconds (runbook: warn > 3s, critical > 8s).",
    ["gateway", "outcome"],
    buckets=LATENCY_BUCKETS,
)
# Payments by the status they reached; payment_processing_rate and payment_success_rate
# are rates and ratios of this counter (see docker/prometheus rules).
payments_processed = Counter(
    "payments_processed",
    "Payments that reached a status after a gateway call, by gateway and status.",
    ["gateway", "status"],
)


class PaymentsInflightCollector:
    """payments_inflight_total: payments not finalized yet (pending, processing,
    requires_action), read from the database at scrape time."""

    def collect(self):
        from django.db import DatabaseError

        from payments.selectors import transactions_inflight_count

        family = GaugeMetricFamily(
            "payments_inflight_total", "Payments not finalized yet (pending, processing, requires_action)."
        )
        try:
            family.add_metric([], transactions_inflight_count())
        except DatabaseError:
            return
        yield family
