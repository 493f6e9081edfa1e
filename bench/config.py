"""Sizes of a run (full: `make bench`; smoke: `make bench-smoke`) and what every row is handed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sizes:
    mode: str
    rounds: int
    wrk_seconds: float  # per arm and round
    warmup_seconds: float
    connections: int  # HTTP rows 1 and 2 (wrk)
    pool_connections: int  # row 3 (Python load generator)
    ops: int  # captures / refunds / bare updates per arm and round
    rebill_sizes: tuple[int, int]  # N, 10·N (row 4), unless calibrated down
    rebill_calibrate: bool  # full mode: shrink the sizes to what fits in rebill_bound_seconds
    rebill_workers_n: int  # row 5's N (full mode: calibrated too)
    rebill_probe: int  # subscriptions of the calibration run (full mode)
    rebill_bound_seconds: float  # one run of the scheduler + workers is cut off after this
    rebill_workers: int  # workers of row 4
    outbox_events: int  # full mode: calibrated down to what fits in the bound, like the rebill sizes
    reconciliation_rows: int  # row 8: settlement rows in the file, and payments of the day
    vacuum: bool  # VACUUM ANALYZE between arms (full only: it takes seconds)
    profile_requests: int
    screening_pairs: int  # row 9: screened and unscreened requests per round, one of each per pair
    dashboard_transactions: int  # row 10: transactions behind the overview
    dashboard_requests: int  # row 10: overview requests (and SQL runs) per round


FULL = Sizes(
    mode="full", rounds=5, wrk_seconds=10, warmup_seconds=3, connections=16, pool_connections=4, ops=50,
    rebill_sizes=(10_000, 100_000), rebill_calibrate=True, rebill_workers_n=10_000, rebill_probe=100, rebill_bound_seconds=120,
    rebill_workers=2, outbox_events=100_000, reconciliation_rows=1_000_000, vacuum=True, profile_requests=50, screening_pairs=300,
    dashboard_transactions=1_000_000, dashboard_requests=20,
)
SMOKE = Sizes(
    mode="smoke", rounds=2, wrk_seconds=1, warmup_seconds=0, connections=16, pool_connections=4, ops=3,
    rebill_sizes=(2, 20), rebill_calibrate=False, rebill_workers_n=6, rebill_probe=0, rebill_bound_seconds=30,
    rebill_workers=2, outbox_events=2_000, reconciliation_rows=2_000, vacuum=False, profile_requests=3, screening_pairs=10,
    dashboard_transactions=2_000, dashboard_requests=3,
)


@dataclass
class Context:
    sizes: Sizes
    fixtures: object  # bench.data.Fixtures
    server_url: str
    log_dir: Path
    # Row 7's baseline: a second gunicorn whose create path skips the ledger posting.
    ledger_off_url: str = ""
    log: Callable[[str], None] = print
    notes: list[str] = field(default_factory=list)  # run-wide remarks for the report
    workers: list = field(default_factory=list)  # bench.stack.CeleryWorker, running for the whole run
