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


class DatabaseUpCollector:
    """payment_service_database_up: 1 when this process can run a query, 0 when it cannot
    (the runbook's PaymentServiceDatabaseIssues alert)."""

    def collect(self):
        from django.db import DatabaseError, connection

        family = GaugeMetricFamily("payment_service_database_up", "1 when the database answers a query from this process.")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            family.add_metric([], 1)
        except DatabaseError:
            family.add_metric([], 0)
        yield family


RUNBOOK_RATE_WINDOW_MINUTES = 5


class PaymentRatesCollector:
    """The runbook's key metrics, over the last 5 minutes, from the database at scrape time
    (the same numbers whichever process is scraped):
    payment_processing_rate: payments processed per minute (warn < 5, critical < 1);
    payment_success_rate: share of processed payments that did not fail, 0..1 (warn < 0.95,
    critical < 0.90); absent when nothing was processed, so an idle night raises no alert."""

    def collect(self):
        import datetime as dt

        from django.db import DatabaseError
        from django.utils import timezone

        from payments.selectors import transaction_outcomes_since

        try:
            processed, failed = transaction_outcomes_since(timezone.now() - dt.timedelta(minutes=RUNBOOK_RATE_WINDOW_MINUTES))
        except DatabaseError:
            return
        rate = GaugeMetricFamily("payment_processing_rate", "Payments processed per minute over the last 5 minutes.")
        rate.add_metric([], processed / RUNBOOK_RATE_WINDOW_MINUTES)
        yield rate
        if processed:
            success = GaugeMetricFamily(
                "payment_success_rate", "Share of payments processed in the last 5 minutes that did not fail (0..1)."
            )
            success.add_metric([], (processed - failed) / processed)
            yield success


# --- gateway calls (scaling chapter and runbook names) ---------------------------------
GATEWAY_DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3, 5, 8, 13, 30)

gateway_requests = Counter(
    "gateway_requests",
    "Calls to payment gateways, by gateway, operation and outcome (ok, declined, error, timeout).",
    ["gateway", "operation", "outcome"],
)
gateway_request_duration_seconds = Histogram(
    "gateway_request_duration_seconds",
    "Latency of payment gateway calls (chapter SLO: p95 < 400 ms).",
    ["gateway", "operation"],
    buckets=GATEWAY_DURATION_BUCKETS,
)
psp_call_errors = Counter(
    "psp_call_errors",
    "Payment gateway calls that failed (unavailable, timeout, invalid request), by gateway, operation and error.",
    ["gateway", "operation", "error"],
)


class GatewayErrorRateCollector:
    """gateway_error_rate{gateway,operation}: share of failed calls over the last 5 minutes,
    from the shared call statistics (the same numbers /payment/health shows), so every
    process reports the same value."""

    def collect(self):
        from django.conf import settings

        from gateways.stats import gateway_recent_stats

        family = GaugeMetricFamily(
            "gateway_error_rate", "Failed share of gateway calls over the last 5 minutes (runbook: warn > 2%, critical > 5%).",
            labels=["gateway", "operation"],
        )
        try:
            for name in settings.FLOWPAY_GATEWAYS:
                for operation, stats in gateway_recent_stats(name).by_operation.items():
                    family.add_metric([name, operation], stats.error_rate)
        except Exception:  # a scrape never fails because the cache is away
            return
        yield family


# Time from a refund's start of processing (queued, approved or retried) to its final
# outcome at the gateway (seconds), by gateway and outcome (succeeded, failed).
refund_processing_latency = Histogram(
    "refund_processing_latency",
    "Time to process a refund, in seconds (runbook: warn > 5s, critical > 15s).",
    ["gateway", "outcome"],
    buckets=LATENCY_BUCKETS,
)


# --- rebill scheduler (subscriptions issue #5; scaling-chapter names) ---------------------
# Rebill jobs that ended without payment, by queue and reason: declined (a dunning retry is
# scheduled), uncollectible (dunning over), error (non-payment failure, retried), dead
# (dead-lettered). Exposed as rebill_jobs_failed_total.
rebill_jobs_failed = Counter(
    "rebill_jobs_failed",
    "Rebill jobs that failed, by queue and reason (declined, uncollectible, error, dead).",
    ["queue", "reason"],
)
rebill_job_duration_seconds = Histogram(
    "rebill_job_duration_seconds",
    "Time to run one rebill job (lease to recorded outcome), in seconds, by queue and outcome.",
    ["queue", "outcome"],
    buckets=LATENCY_BUCKETS,
)


class RebillQueueDepthCollector:
    """rebill_queue_depth{queue}: rebill jobs queued (waiting for a worker) per queue, read
    from the database at scrape time."""

    def collect(self):
        from django.db import DatabaseError

        from subscriptions.selectors import rebill_queue_depths

        family = GaugeMetricFamily("rebill_queue_depth", "Rebill jobs queued per queue.", labels=["queue"])
        try:
            for queue, depth in rebill_queue_depths().items():
                family.add_metric([queue], depth)
        except DatabaseError:
            return
        yield family


# --- inbound gateway webhooks (issue #6; scaling-chapter name) ------------------------------
# Time from when the gateway says an event happened to when FlowPay finished processing it
# (processed or ignored), by gateway and outcome: delivery delay + queueing + processing.
WEBHOOK_LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800, 86400)
webhook_lag_seconds = Histogram(
    "webhook_lag_seconds",
    "Lag from a gateway event's creation to its processing by FlowPay, in seconds.",
    ["gateway", "outcome"],
    buckets=WEBHOOK_LAG_BUCKETS,
)
