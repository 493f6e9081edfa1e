"""Runbook "High Latency": payment gateway response times.

Takes --samples timed health checks per gateway (the gateway's reported latency when it
gives one, else the wall-clock time of the call) and shows min / median / p95 / max next to
the recent (5 min) average of real calls. The threshold defaults to 3000 ms, the runbook's
payment_processing_latency warning (3 s)."""

import math
import statistics

from core.cli import Column, Report, RunbookCommand, non_negative_float, positive_int
from gateways.cli import gateway_names_for, gateway_probe


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class Command(RunbookCommand):
    help = (
        "Timed health checks per gateway: min/median/p95/max latency in ms and the recent average. "
        "Exits 1 when a gateway's p95 exceeds --threshold-ms or no sample succeeded."
    )

    def add_arguments(self, parser):
        parser.add_argument("--gateway", metavar="NAME", help="check one gateway (default: every enabled gateway)")
        parser.add_argument("--samples", type=positive_int, default=5, metavar="N", help="health checks per gateway (5)")
        parser.add_argument("--threshold-ms", type=non_negative_float, default=3000.0, metavar="MS",
                            help="p95 above this is a problem (3000, the runbook's latency warning)")

    def build_report(self, *, gateway: str | None, samples: int, threshold_ms: float, **options) -> Report:
        rows, report = [], Report(ok_message=f"OK: every gateway's p95 is within {threshold_ms:g} ms.")
        for name in gateway_names_for(gateway):
            probes = [gateway_probe(name) for _ in range(samples)]
            good = [p["latencyMs"] for p in probes if p["healthy"]]
            last = probes[-1]
            row = {
                "gateway": name,
                "samples": samples,
                "failedSamples": samples - len(good),
                "minMs": round(min(good), 1) if good else None,
                "medianMs": round(statistics.median(good), 1) if good else None,
                "p95Ms": round(percentile(good, 0.95), 1) if good else None,
                "maxMs": round(max(good), 1) if good else None,
                "recentAverageMs": last["recentAverageLatencyMs"],
                "recentCalls": last["recentCalls"],
                "circuit": last["circuit"],
                "overThreshold": bool(good) and percentile(good, 0.95) > threshold_ms,
                "detail": next((p["detail"] for p in probes if not p["healthy"]), ""),
            }
            rows.append(row)
            if not good:
                report.problem(f"{name}: no successful sample out of {samples} ({row['detail'] or 'unhealthy'})")
            elif row["overThreshold"]:
                report.problem(f"{name}: p95 latency {row['p95Ms']} ms exceeds {threshold_ms:g} ms")
        report.add_field("thresholdMs", "Threshold", threshold_ms, f"p95 <= {threshold_ms:g} ms")
        report.add_field("samples", "Samples per gateway", samples)
        report.add_table(
            "gateways", "Latency (ms)",
            [Column("gateway", "GATEWAY"), Column("samples", "SAMPLES"), Column("failedSamples", "FAILED"),
             Column("minMs", "MIN", align="right"), Column("medianMs", "MEDIAN", align="right"),
             Column("p95Ms", "P95", align="right"), Column("maxMs", "MAX", align="right"),
             Column("recentAverageMs", "RECENT AVG", align="right"), Column("recentCalls", "RECENT CALLS"),
             Column("circuit", "CIRCUIT"), Column("detail", "DETAIL")],
            rows,
        )
        return report
