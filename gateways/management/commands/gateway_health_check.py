"""Runbook "Payment Gateway Issues": is the problem isolated to one gateway?
Also answers the runbook's connectivity check (the curl
to api.stripe.com) with the configured key and API base."""

from core.cli import Column, Report, RunbookCommand
from gateways.breaker import BreakerState
from gateways.cli import gateway_names_for, gateway_probe
from gateways.router import fallback_mode_enabled, primary_gateway_name

PROBE_COLUMNS = [
    Column("gateway", "GATEWAY"), Column("primary", "PRIMARY"), Column("healthy", "HEALTHY"),
    Column("latencyMs", "LATENCY MS"), Column("circuit", "CIRCUIT"), Column("failuresInWindow", "FAILURES"),
    Column("recentCalls", "RECENT CALLS"), Column("recentErrorRatePercent", "ERROR %"), Column("detail", "DETAIL"),
]


class Command(RunbookCommand):
    help = (
        "Health check of each enabled gateway (or one): healthy, latency, circuit breaker state and recent "
        "(5 min) error rate. Exits 1 when a gateway is unhealthy or its circuit is open."
    )

    def add_arguments(self, parser):
        parser.add_argument("--gateway", metavar="NAME", help="check one gateway (default: every enabled gateway)")

    def build_report(self, *, gateway: str | None, **options) -> Report:
        rows = [gateway_probe(name) for name in gateway_names_for(gateway)]
        report = Report(ok_message="OK: every gateway checked is healthy with its circuit closed.")
        report.add_field("primaryGateway", "Primary gateway", primary_gateway_name())
        report.add_field("fallbackMode", "Fallback mode", fallback_mode_enabled(), "on" if fallback_mode_enabled() else "off")
        report.add_table("gateways", "Gateways", PROBE_COLUMNS, rows)
        for row in rows:
            if not row["healthy"]:
                report.problem(f"{row['gateway']}: unhealthy ({row['detail'] or 'no detail'})")
            if row["circuit"] == BreakerState.OPEN:
                report.problem(f"{row['gateway']}: circuit breaker is open ({row['failuresInWindow']} failures in the window)")
        return report
