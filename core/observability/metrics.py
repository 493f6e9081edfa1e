"""Prometheus metrics of the payment flow (runbook and scaling-chapter names): the counters
and histograms every app records into. They work under several gunicorn workers when
PROMETHEUS_MULTIPROC_DIR is set. Gauges that describe stored state (payments in flight,
rebill queues) are computed from the database at scrape time by backoffice.metrics, which
may read every app; this module imports none."""

from django.db import DatabaseError, connection
from prometheus_client import Counter, Gauge, Histogram
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


class DatabaseUpCollector:
    """payment_service_database_up: 1 when this process can run a query, 0 when it cannot
    (the runbook's PaymentServiceDatabaseIssues alert)."""

    def collect(self):
        family = GaugeMetricFamily("payment_service_database_up", "1 when the database answers a query from this process.")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            family.add_metric([], 1)
        except DatabaseError:
            family.add_metric([], 0)
        yield family


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


# Time from a refund's start of processing (queued, approved or retried) to its final
# outcome at the gateway (seconds), by gateway and outcome (succeeded, failed).
refund_processing_latency = Histogram(
    "refund_processing_latency",
    "Time to process a refund, in seconds (runbook: warn > 5s, critical > 15s).",
    ["gateway", "outcome"],
    buckets=LATENCY_BUCKETS,
)


# --- fraud screening (runbook name) -------------------------------------------------------
# Time to screen one payment (signals, velocity, rules, score, decision recorded), seconds.
FRAUD_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10)
fraud_detection_latency = Histogram(
    "fraud_detection_latency",
    "Time for fraud checks on a payment, in seconds (runbook: warn > 1s, critical > 3s).",
    buckets=FRAUD_LATENCY_BUCKETS,
)
# Screening decisions by outcome (allow, block, review, request_3ds); exposed as
# fraud_decisions_total.
fraud_decisions = Counter(
    "fraud_decisions",
    "Fraud screening decisions, by decision (allow, block, review, request_3ds).",
    ["decision"],
)


# --- rebill scheduler (scaling-chapter names) ---------------------------------------------
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


# --- inbound gateway webhooks (scaling-chapter name) -----------------------------------------
# Time from when the gateway says an event happened to when FlowPay finished processing it
# (processed or ignored), by gateway and outcome: delivery delay + queueing + processing.
WEBHOOK_LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800, 86400)
webhook_lag_seconds = Histogram(
    "webhook_lag_seconds",
    "Lag from a gateway event's creation to its processing by FlowPay, in seconds.",
    ["gateway", "outcome"],
    buckets=WEBHOOK_LAG_BUCKETS,
)


# --- audit chain anchors ---------------------------------------------------------------------
# Set by the sealer from the seal it has just committed, never read from the database at
# scrape time: they are a record of the chain outside the database (a later seal id or
# entry id below what they show means the chain was truncated). "max": across processes,
# and in the multiprocess files of dead ones, the highest value wins.
audit_chain_last_seal_id = Gauge(
    "audit_chain_last_seal_id", "Id of the last audit seal this deployment committed.", multiprocess_mode="max",
)
audit_chain_last_sealed_entry_id = Gauge(
    "audit_chain_last_sealed_entry_id", "Id of the last audit entry sealed into the hash chain.", multiprocess_mode="max",
)
audit_chain_last_seal_timestamp = Gauge(
    "audit_chain_last_seal_timestamp_seconds", "Unix time of the last audit seal committed.", multiprocess_mode="max",
)


# --- reconciliation (scaling-chapter name) -------------------------------------------------
# Discrepancies a reconciliation run recorded for the first time, by gateway and category
# (re-runs of a day do not count an item twice). Exposed as reconciliation_mismatches_total.
# Open items and the last successful run are gauges read from the database (backoffice.metrics).
reconciliation_mismatches = Counter(
    "reconciliation_mismatches",
    "Discrepancies found by reconciliation with the gateways, by gateway and category.",
    ["gateway", "category"],
)
