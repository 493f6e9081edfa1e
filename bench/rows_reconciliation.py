"""7. reconcile a settlement file: `python manage.py reconcile_payments --gateway=stripe
--date=2023-05-15 --file PATH --rerun` (the runbook command, its own process, as an operator
runs it) reconciling N rows of Stripe's itemized balance-change report against N FlowPay
payments of that day, vs the floor of that work: a process that COPYs the same file into a
temporary table and runs one FULL OUTER JOIN on the reference against the payments (counting
both sides' unmatched rows and the matched pairs whose amounts differ). Both arms' wall time
includes starting their process; each arm's peak RSS is the process's own (wait4).

Data (untimed, once): N completed payments on 2023-05-15 (INSERT … SELECT) and the file: a
row per payment, every 1000th row's amount off by one cent, every 1000th payment left out,
N/1000 rows of payments FlowPay never made. Setup before each candidate round: the runs and
items of earlier rounds deleted, so every round finds the same items as new.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

from django.db import connection, transaction

from bench import data, stack
from bench.config import Context
from bench.recon_floor import COLUMNS
from bench.stats import Arm, Goal, Ratio, RowResult, Stopwatch, interleave, ratios, summarize

DAY = "2023-05-15"
# manage.py runs Django's system checks, which refuse production settings without audit chain
# keys (gunicorn and the workers run none): a fixed key of the bench's own for the command.
AUDIT_KEY = "bench:" + base64.b64encode(hashlib.sha256(b"flowpay-bench-audit-key").digest()).decode()
MEMORY_BUDGET_MIB = 1024
def payments_insert(ctx: Context, n: int) -> None:
    from payments.models import Transaction

    data.activity_wipe(vacuum=False)
    data.insert_select(Transaction, count=n, params={"merchant": ctx.fixtures.merchant_id}, sql={
        "public_id": "'txn_bench' || lpad(g::text, 15, '0')", "merchant_id": "%(merchant)s",
        "amount": "1000 + g %% 9000", "amount_captured": "1000 + g %% 9000", "currency": "'USD'", "status": "'completed'",
        "payment_method": "'pm_card_visa'", "payment_method_token": "'pm_card_visa'", "gateway": "'stripe'",
        "gateway_reference": "'pi_bench' || g", "processing_started_at": "'2023-05-15 00:00:00+00'::timestamptz",
        "finalized_at": "'2023-05-15 00:00:00+00'::timestamptz + (g %% 86000) * interval '1 second'",
    })
    if ctx.sizes.vacuum:
        data.vacuum_analyze([Transaction._meta.db_table])


def report_file(path: Path, n: int) -> dict[str, int]:
    """The day's itemized report, written once; what a reconciliation of it must find."""
    expected = {"amount_mismatch": 0, "missing_at_gateway": 0, "missing_locally": 0}
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(COLUMNS) + "\n")
        for g in range(1, n + 1):
            if g % 1000 == 500:
                expected["missing_at_gateway"] += 1
                continue
            cents = 1000 + g % 9000 + (1 if g % 1000 == 0 else 0)
            expected["amount_mismatch"] += 1 if g % 1000 == 0 else 0
            second = g % 86000
            out.write(f"txn_b{g},2023-05-15 {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d},"
                      f"2023-05-17 00:00:00,usd,{cents // 100}.{cents % 100:02d},0.59,{cents // 100 - 1}.{cents % 100:02d},"
                      f"charge,ch_b{g},,pi_bench{g},txn_bench{g:015d}\n")
        for extra in range(max(1, n // 1000)):
            expected["missing_locally"] += 1
            out.write(f"txn_x{extra},2023-05-15 12:00:00,2023-05-17 00:00:00,usd,42.00,1.52,40.48,charge,ch_x{extra},,"
                      f"pi_stranger{extra},\n")
    return expected


def reset_runs() -> None:
    data.guard_database()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM reconciliation_reconciliationitem")
        cursor.execute("DELETE FROM reconciliation_reconciliationrun")


def _timed_process(argv: list[str], *, out: Path) -> tuple[float, float, int]:
    """Run `argv` with the bench's environment, its output to `out` (and its log beside it):
    (seconds, peak RSS in MiB, exit status)."""
    with out.open("wb") as stdout, out.with_suffix(".log").open("ab") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=stack.ROOT, env=stack.bench_env(FLOWPAY_AUDIT_CHAIN_KEYS=AUDIT_KEY), stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, process.returncode


def candidate_run(ctx: Context, path: Path, expected: dict[str, int]) -> dict[str, float]:
    out = ctx.log_dir / "reconcile_payments.json"
    seconds, rss, status = _timed_process([stack.PYTHON, "manage.py", "reconcile_payments", "--gateway=stripe",
                                           f"--date={DAY}", "--file", str(path), "--rerun", "--format", "json"], out=out)
    document = json.loads(out.read_text())
    if status != 1 or {k: document["counts"][k] for k in expected} != expected:
        raise RuntimeError(f"reconcile_payments exited {status} with counts {document.get('counts')}, expected {expected}")
    return {"seconds": seconds, "peak_rss_mib": rss, "budget_mib": MEMORY_BUDGET_MIB, "items": document["itemsTotal"],
            "matched": document["counts"]["matched"]}


def floor_run(ctx: Context, path: Path, expected: dict[str, int]) -> dict[str, float]:
    out = ctx.log_dir / "reconciliation_floor.json"
    seconds, rss, status = _timed_process([stack.PYTHON, "-m", "bench.recon_floor", str(path)], out=out)
    found = json.loads(out.read_text())
    if status != 0 or found != expected:
        raise RuntimeError(f"the floor exited {status} with {found}, expected {expected}")
    return {"seconds": seconds, "peak_rss_mib": rss, "items": sum(found.values())}


def row_reconciliation(ctx: Context) -> RowResult:
    n = ctx.sizes.reconciliation_rows
    path = ctx.log_dir / "settlement-report.csv"
    with Stopwatch() as preparation:
        payments_insert(ctx, n)
        expected = report_file(path, n)
    arms = [
        Arm("reconcile_payments --file", setup=reset_runs, run=lambda: candidate_run(ctx, path, expected)),
        Arm("COPY + FULL OUTER JOIN", run=lambda: floor_run(ctx, path, expected)),
    ]
    with Stopwatch() as watch:
        samples = interleave(arms, rounds=ctx.sizes.rounds, log=ctx.log)
    specs = [
        Ratio("wall time: reconcile_payments / COPY + FULL OUTER JOIN", ("reconcile_payments --file", "seconds"),
              ("COPY + FULL OUTER JOIN", "seconds"), Goal(at_most=2)),
        Ratio("peak RSS / 1 GiB", ("reconcile_payments --file", "peak_rss_mib"), ("reconcile_payments --file", "budget_mib"),
              Goal(at_most=1)),
    ]
    peak = max(r["peak_rss_mib"] for r in samples["reconcile_payments --file"])
    size = path.stat().st_size
    path.unlink()
    return RowResult(
        id="8", title="reconcile a settlement file", rounds=ctx.sizes.rounds, arms=summarize(samples),
        candidate="reconcile_payments --gateway=stripe --file (its own process: COPY, matching in PostgreSQL, items)",
        baseline="a process: COPY of the file into a temporary table + one FULL OUTER JOIN on the reference",
        ratios=ratios(samples, specs), seconds=watch.seconds,
        sizes={"rows": n, "payments": n, "file_mib": round(size / 2**20, 1), "setup_seconds": round(preparation.seconds)},
        checks={"peak_rss_mib_max": round(peak), "within_1_gib": peak <= MEMORY_BUDGET_MIB, **expected},
    )
