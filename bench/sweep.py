"""gunicorn workers × threads for the create-payment row, once: `python -m bench sweep`
(make bench-sweep). For each of 2/4/8 workers × 1/2/4 threads: a fresh gunicorn (the
production configuration, docker/gunicorn.conf.py), a warm-up, then create payment for
the row's duration on 16 connections, and the bare endpoint right after it as a measure of
what the machine gave that configuration (the machine is shared). The best choice and why
is recorded in docker/gunicorn.conf.py's comments.

Writes bench/results/<timestamp>-sweep.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from itertools import product

from bench import stack
from bench.config import FULL
from bench.run import git_commit

WORKERS = (2, 4, 8)
THREADS = (1, 2, 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=FULL.wrk_seconds)
    args = parser.parse_args(argv)
    stack.configure_harness()
    with stack.run_lock():
        return _sweep(seconds=args.seconds)


def _sweep(*, seconds: float) -> int:
    from bench import data, load, rows_http

    stack.ensure_database()
    stack.redis_flush()
    data.database_wipe()
    fixtures = data.fixtures_create(api_keys=FULL.connections)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-sweep"
    out_dir = stack.ROOT / "bench" / "results"
    log_dir = out_dir / f"{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results = []
    started = time.perf_counter()
    for workers, threads in product(WORKERS, THREADS):
        data.activity_wipe(vacuum=True)
        with stack.Gunicorn(workers=workers, threads=threads, log_dir=log_dir) as server:
            def measure(path: str, seconds: float, server=server) -> load.HttpResult:
                return load.wrk_run(url=server.url, path=path, body=rows_http.BODY, api_keys=fixtures.api_keys,
                                    connections=FULL.connections, seconds=seconds)

            measure(rows_http.CREATE_PATH, FULL.warmup_seconds)
            measure(rows_http.BARE_PATH, FULL.warmup_seconds)
            create = measure(rows_http.CREATE_PATH, seconds)
            bare = measure(rows_http.BARE_PATH, seconds)
        row = {"workers": workers, "threads": threads, "create": create.metrics(), "bare": bare.metrics(),
               "create_share_of_bare": create.rps / bare.rps if bare.rps else 0.0, "load_average": os.getloadavg()[0]}
        results.append(row)
        print(f"{workers} workers × {threads} threads: create {create.rps:.1f} rps p50 {create.p50_ms:.0f} ms "
              f"p99 {create.p99_ms:.0f} ms; bare {bare.rps:.1f} rps (load {row['load_average']:.1f})", flush=True)
    best = max(results, key=lambda r: r["create"]["rps"])
    document = {"started_at": stamp, "seconds": time.perf_counter() - started, "commit": git_commit(), "results": results,
                "best_by_create_rps": {"workers": best["workers"], "threads": best["threads"]}}
    (out_dir / f"{stamp}.json").write_text(json.dumps(document, indent=2))
    lines = [f"# gunicorn sweep {stamp} (create payment, {FULL.connections} connections, {seconds:g} s each)", "",
             "| workers | threads | create rps | create p50 ms | create p99 ms | bare rps | create / bare | load |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        c, b = r["create"], r["bare"]
        lines.append(f"| {r['workers']} | {r['threads']} | {c['rps']:.1f} | {c['p50_ms']:.0f} | {c['p99_ms']:.0f} | "
                     f"{b['rps']:.1f} | {r['create_share_of_bare']:.3f} | {r['load_average']:.1f} |")
    (out_dir / f"{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    stack.redis_flush()
    return 0
