"""/metrics: the counters and histograms of every process, plus gauges read from the database
at scrape time. The gauges read payments, gateways and subscriptions, so they live in the back
office, the one layer that may read every app."""

import datetime as dt
import os

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from core.observability.access import monitoring_only
from core.observability.metrics import DatabaseUpCollector
from gateways.stats import gateway_recent_stats
from ledger.selectors import ledger_last_verification
from payments.selectors import transaction_outcomes_since, transactions_inflight_count
from reconciliation.selectors import reconciliation_last_successes, reconciliation_open_items
from subscriptions.selectors import rebill_queue_depths

RUNBOOK_RATE_WINDOW_MINUTES = 5


class PaymentsInflightCollector:
    """payments_inflight_total: payments not finalized yet (pending, processing,
    requires_action), read from the database at scrape time."""

    def collect(self):
        family = GaugeMetricFamily(
            "payments_inflight_total", "Payments not finalized yet (pending, processing, requires_action)."
        )
        try:
            family.add_metric([], transactions_inflight_count())
        except DatabaseError:
            return
        yield family


class PaymentRatesCollector:
    """The runbook's key metrics, over the last 5 minutes, from the database at scrape time
    (the same numbers whichever process is scraped):
    payment_processing_rate: payments processed per minute (warn < 5, critical < 1);
    payment_success_rate: share of processed payments that did not fail, 0..1 (warn < 0.95,
    critical < 0.90); absent when nothing was processed, so an idle night raises no alert."""

    def collect(self):
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


class GatewayErrorRateCollector:
    """gateway_error_rate{gateway,operation}: share of failed calls over the last 5 minutes,
    from the shared call statistics (the same numbers /payment/health shows), so every
    process reports the same value."""

    def collect(self):
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


class RebillQueueDepthCollector:
    """rebill_queue_depth{queue}: rebill jobs queued (waiting for a worker) per queue, read
    from the database at scrape time."""

    def collect(self):
        family = GaugeMetricFamily("rebill_queue_depth", "Rebill jobs queued per queue.", labels=["queue"])
        try:
            for queue, depth in rebill_queue_depths().items():
                family.add_metric([queue], depth)
        except DatabaseError:
            return
        yield family


class LedgerVerificationCollector:
    """The latest whole-ledger verify_ledger run (nightly from beat, or by hand):
    ledger_imbalance_minor_units{currency}: Σ debits - Σ credits, summed over the entry
    phases as absolute values (0 when the books balance; any other value is a critical
    alert); ledger_verify_last_success_timestamp: when a run last found nothing wrong (Unix
    seconds). Absent until the first run."""

    def collect(self):
        try:
            latest, last_success = ledger_last_verification()
        except DatabaseError:
            return
        if latest is not None:
            imbalance = GaugeMetricFamily(
                "ledger_imbalance_minor_units", "Ledger imbalance per currency at the last verify_ledger run (minor units).",
                labels=["currency"],
            )
            for currency, amount in sorted(latest.imbalance.items()):
                imbalance.add_metric([currency], amount)
            yield imbalance
        if last_success is not None:
            success = GaugeMetricFamily(
                "ledger_verify_last_success_timestamp", "When verify_ledger last found the ledger sound (Unix time)."
            )
            success.add_metric([], last_success.finished_at.timestamp())
            yield success
class ReconciliationCollector:
    """reconciliation_open_items{gateway,category}: items open or being investigated;
    reconciliation_oldest_open_item_timestamp{gateway,category}: when the oldest of them was
    found (unix time; the "open for more than 3 days" alert); and
    reconciliation_last_success_timestamp{gateway}: when the gateway's last run finished (a
    run that fails records nothing). Read from the database at scrape time."""

    def collect(self):
        open_items = GaugeMetricFamily("reconciliation_open_items", "Reconciliation items open or being investigated.",
                                       labels=["gateway", "category"])
        oldest = GaugeMetricFamily("reconciliation_oldest_open_item_timestamp",
                                   "Unix time when the oldest unresolved reconciliation item was found.",
                                   labels=["gateway", "category"])
        last_success = GaugeMetricFamily("reconciliation_last_success_timestamp",
                                         "Unix time when the gateway's last successful reconciliation run finished.",
                                         labels=["gateway"])
        try:
            for gateway, category, count, first_found in reconciliation_open_items():
                open_items.add_metric([gateway, category], count)
                oldest.add_metric([gateway, category], first_found.timestamp())
            for gateway, finished in reconciliation_last_successes().items():
                last_success.add_metric([gateway], finished.timestamp())
        except DatabaseError:
            return
        yield open_items
        yield oldest
        yield last_success


# Gauges read from the database at scrape time live in their own registry, so that they
# are reported once whatever the number of worker processes.
_database_registry = CollectorRegistry(auto_describe=False)
_database_registry.register(DatabaseUpCollector())
_database_registry.register(PaymentsInflightCollector())
_database_registry.register(PaymentRatesCollector())
_database_registry.register(GatewayErrorRateCollector())
_database_registry.register(RebillQueueDepthCollector())
_database_registry.register(LedgerVerificationCollector())
_database_registry.register(ReconciliationCollector())


@monitoring_only
def metrics_view(request):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    body = generate_latest(registry) + generate_latest(_database_registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
