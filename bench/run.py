"""The benchmark run: `python -m bench [--smoke] [--rows 1,2,…]` (make bench / make bench-smoke).

Prepares the bench database (created and migrated if needed, wiped) and Redis DB, creates
the fixtures, starts gunicorn (4 sync workers, 1 thread: production's default, bench/README.md) and two Celery
workers, runs the rows in order, measures where a create-payment request's time goes,
writes bench/results/<timestamp>.json and .md, and stops everything it started.

Exit status: 0 when every row ran (whatever the ratios: goals are reported, not
asserted), 1 when a row failed to run (the harness is broken).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from bench import stack
from bench.config import FULL, SMOKE, Context

RESULTS = stack.ROOT / "bench" / "results"
ALL_ROWS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
GUNICORN_WORKERS, GUNICORN_THREADS = 4, 1


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=stack.ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=stack.ROOT, capture_output=True,
                               text=True, check=False).stdout.strip()
        return sha + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}"


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _run_row(row_id: str, title: str, function, results: list, failures: list) -> object:
    _log(f"row {row_id}: {title}")
    try:
        result = function()
    except Exception as exc:
        traceback.print_exc()
        failures.append(row_id)
        results.append({"id": row_id, "title": title, "error": f"{type(exc).__name__}: {exc}"})
        return None
    if isinstance(result, list):
        results.extend(result)
    else:
        results.append(result)
    for row in result if isinstance(result, list) else [result]:
        for ratio in row.ratios:
            verdict = "" if ratio.met is None else (" (goal met)" if ratio.met else f" (goal {ratio.goal} NOT met)")
            _log(f"  {row.id} {ratio.label}: {ratio.value:.3g}{ratio.unit}{verdict}")
    return result


def _rebill_rows(ctx: Context, selected: list[str]) -> list:
    from bench import rows_rebill

    sizes, workers_n, calibration = rows_rebill.calibrate(ctx)
    if calibration:
        _log(f"  calibrated: row 4 sizes {sizes}, row 5 N {workers_n} ({calibration})")
    rows = []
    if "4" in selected:
        rows.append(rows_rebill.row_rebill(ctx, sizes=sizes, calibration=calibration))
    if "5" in selected:
        rows.append(rows_rebill.row_workers(ctx, n=workers_n))
    return rows


def _run_rows(ctx: Context, selected: list[str], results: list, failures: list[str]) -> None:
    from bench import rows_fraud, rows_http, rows_outbox

    http_rows = [("1", "create payment", rows_http.row_create_payment), ("2", "idempotent replay", rows_http.row_idempotent_replay),
                 ("3", "capture and refund", rows_http.row_capture_refund)]
    for row_id, title, function in http_rows:
        if row_id in selected:
            _run_row(row_id, title, lambda f=function: f(ctx), results, failures)
    if {"4", "5"} & set(selected):
        _run_row("4,5", "rebill", lambda: _rebill_rows(ctx, selected), results, failures)
    if "6" in selected:
        _run_row("6", "outbox drain", lambda: rows_outbox.row_outbox(ctx), results, failures)
    if "7" in selected:
        from bench import rows_ledger

        _run_row("7", "ledger postings on create payment", lambda: rows_ledger.row_ledger_postings(ctx), results, failures)
    if "8" in selected:
        from bench import rows_reconciliation

        _run_row("8", "reconcile a settlement file", lambda: rows_reconciliation.row_reconciliation(ctx), results, failures)
    if "9" in selected:
        from bench import rows_fraud

        _run_row("9", "fraud screening", lambda: rows_fraud.row_fraud_screening(ctx), results, failures)
    if "10" in selected:
        from bench import rows_dashboard

        _run_row("10", "dashboard overview", lambda: rows_dashboard.row_dashboard_overview(ctx), results, failures)


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops every process started


def run(*, smoke: bool, selected: list[str], out_dir: Path, command: str) -> int:
    # A run started in the background ignores SIGINT; TERM and INT both stop it cleanly.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    sizes = SMOKE if smoke else FULL
    started = time.perf_counter()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + ("-smoke" if smoke else "")
    log_dir = out_dir / f"{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    meta = {"mode": sizes.mode, "command": command, "commit": git_commit(), "machine": _machine(), "started_at": stamp,
            "sizes": sizes.__dict__, "gunicorn": {"workers": GUNICORN_WORKERS, "threads": GUNICORN_THREADS}}
    _log(f"{sizes.mode} run, rows {','.join(selected)}; {meta['machine']}; logs in {log_dir}")

    stack.configure_harness()
    with stack.run_lock(log=_log):
        return _run_locked(sizes=sizes, selected=selected, out_dir=out_dir, stamp=stamp, log_dir=log_dir, meta=meta,
                           started=started)


def _run_locked(*, sizes, selected: list[str], out_dir: Path, stamp: str, log_dir: Path, meta: dict, started: float) -> int:
    from bench import data, profile_create, report, rows_rebill

    stack.ensure_database()
    stack.redis_flush()  # before any worker binds its queues there
    results: list = []
    failures: list[str] = []
    profile = None
    server = stack.Gunicorn(workers=GUNICORN_WORKERS, threads=GUNICORN_THREADS, log_dir=log_dir)
    # Row 7's baseline: the same server, its create path skipping the ledger posting.
    servers = [server]
    if "7" in selected:
        servers.append(stack.Gunicorn(workers=GUNICORN_WORKERS, threads=GUNICORN_THREADS, log_dir=log_dir,
                                      settings_module="bench.settings_without_ledger"))
    workers = [stack.CeleryWorker(queues=rows_rebill.WORKER_QUEUES[i], name=f"worker{i}", log_dir=log_dir) for i in (1, 2)]
    try:
        for process in [*servers, *workers]:  # they boot while the data is prepared
            process.launch()
        data.database_wipe()
        fixtures = data.fixtures_create(api_keys=sizes.connections)
        ctx = Context(sizes=sizes, fixtures=fixtures, server_url=server.url, log_dir=log_dir, log=_log, workers=workers,
                      ledger_off_url=servers[-1].url if len(servers) > 1 else "")
        for process in [*servers, *workers]:
            process.wait_ready()
        _run_rows(ctx, selected, results, failures)
        _log("where the create-payment time goes (in-process profile)")
        data.activity_wipe(vacuum=sizes.vacuum)
        meta["notes"] = ctx.notes
        try:
            profile = profile_create.profile_summary(api_key=fixtures.api_keys[0], requests=sizes.profile_requests,
                                                     out_dir=out_dir / f"{stamp}-profile", fixtures=fixtures)
        except Exception:
            traceback.print_exc()
            failures.append("profile")
    finally:
        for worker in workers:
            worker.stop()
        for process in servers:
            process.stop()
        stack.redis_flush()
    meta["seconds"] = time.perf_counter() - started
    meta["machine_after"] = _machine()
    json_path, md_path = report.write(out_dir=out_dir, stamp=stamp, meta=meta, rows=results, profile=profile)
    _log(f"wrote {json_path} and {md_path} in {meta['seconds']:.0f} s")
    if failures:
        _log(f"FAILED to run: {', '.join(failures)}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "profile":
        from bench import profile_create

        return profile_create.main(argv[1:])
    if argv and argv[0] == "sweep":
        from bench import sweep

        return sweep.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description="FlowPay's benchmarks (bench/README.md).")
    parser.add_argument("--smoke", action="store_true", help="every row at a tiny size, 2 rounds (under a minute)")
    parser.add_argument("--rows", default=",".join(ALL_ROWS), help="comma-separated row numbers (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    selected = [r for r in args.rows.split(",") if r]
    unknown = set(selected) - set(ALL_ROWS)
    if unknown:
        parser.error(f"unknown rows: {sorted(unknown)}")
    from bench import load

    # wrk drives the HTTP rows only (1 and 2); the others run without it.
    if {"1", "2"} & set(selected) and not load.wrk_available():
        parser.error("wrk is not installed (make bench installs Debian's wrk package)")
    command = "python -m bench " + shlex.join(argv) if argv else "python -m bench"
    return run(smoke=args.smoke, selected=selected, out_dir=args.out, command=command.strip())
