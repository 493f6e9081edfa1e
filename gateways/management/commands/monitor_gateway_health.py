"""Runbook "Payment Gateway Failure Recovery": monitor gateway status for recovery.

Prints one status line per check, every --interval seconds, until interrupted (Ctrl-C), or
stops after --count checks (--once = --count 1). With --format json each check is one JSON
document on its own line (JSON Lines). With --once or --count the exit status reflects the
last check: 1 when the gateway was unhealthy or its circuit open."""

import time

from django.utils import timezone

from core.cli import Column, RunbookCommand, non_negative_float, positive_int, to_json
from gateways.breaker import BreakerState
from gateways.cli import gateway_names_for, gateway_probe
from gateways.router import primary_gateway_name

COLUMNS = [
    Column("time", "TIME", fmt=lambda v: timezone.localtime(v).strftime("%H:%M:%S")), Column("gateway", "GATEWAY"),
    Column("status", "STATUS"), Column("latencyMs", "LATENCY MS", align="right"), Column("circuit", "CIRCUIT"),
    Column("recentErrorRatePercent", "ERROR %", align="right"), Column("change", "CHANGE"), Column("detail", "DETAIL"),
]
WIDTHS = {"time": 8, "gateway": 10, "status": 9, "latencyMs": 10, "circuit": 9, "recentErrorRatePercent": 7, "change": 10}


class Command(RunbookCommand):
    help = (
        "Print a gateway's health (time, healthy, latency, circuit, recent error rate) every --interval "
        "seconds until interrupted. --once / --count N stop after N checks; the exit status is then 1 "
        "when the last check found the gateway unhealthy or its circuit open."
    )

    def add_arguments(self, parser):
        parser.add_argument("--gateway", metavar="NAME", help="the gateway to watch (default: the primary gateway)")
        parser.add_argument("--interval", type=non_negative_float, default=10.0, metavar="SECONDS",
                            help="seconds between checks (10)")
        stop = parser.add_mutually_exclusive_group()
        stop.add_argument("--once", action="store_true", help="one check, then exit")
        stop.add_argument("--count", type=positive_int, metavar="N", help="stop after N checks")

    def handle(self, *args, gateway: str | None, interval: float, once: bool, count: int | None, **options):
        self.output_format = options["format"]
        name = gateway_names_for(gateway or primary_gateway_name())[0]
        limit = 1 if once else count
        checks, previous, problem = 0, None, False
        if not self.json_output:
            self.stdout.write(self._line({c.key: c.header for c in COLUMNS}))
        try:
            while True:
                probe = gateway_probe(name)
                ok = probe["healthy"] and probe["circuit"] != BreakerState.OPEN
                row = {
                    "time": timezone.now(),
                    **probe,
                    "ok": ok,
                    "status": "healthy" if probe["healthy"] else "UNHEALTHY",
                    "change": None if previous is None or previous == ok else ("recovered" if ok else "went down"),
                }
                previous, problem = ok, not ok
                if self.json_output:
                    self.stdout.write(to_json(row, indent=None))
                else:
                    self.stdout.write(self._line({c.key: c.render(row.get(c.key)) for c in COLUMNS}))
                self.stdout.flush()
                checks += 1
                if limit is not None and checks >= limit:
                    break
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
        self.exit_for(problem)

    @staticmethod
    def _line(cells: dict) -> str:
        parts = []
        for column in COLUMNS:
            width = WIDTHS.get(column.key)
            text = cells[column.key]
            if width is None:
                parts.append(text)
            elif column.align == "right":
                parts.append(text.rjust(width))
            else:
                parts.append(text.ljust(width))
        return "  ".join(parts).rstrip()
