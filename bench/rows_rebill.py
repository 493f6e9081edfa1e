"""Rebill rows: FlowPay's subscriptions scheduler and real Celery workers charging N due
subscriptions, against set-based SQL.

4. rebill N subscriptions due: the scheduler (subscriptions.rebill_schedule's body, run in
   the harness as beat's worker would: invoice due periods, queue retries, dispatch drain
   messages) plus the workers draining the rebill.monthly queue until every job is
   finished, vs one INSERT … SELECT of the same invoice rows; at N and 10·N.
5. rebill workers: the same N drained by 2 workers vs 1, the speed-up, and a check that no
   invoice was charged twice (transactions per invoice, and charges the gateway saw).

Setup (untimed, before each arm): the activity tables emptied and N due subscriptions
written with one INSERT … SELECT (bench.data.due_subscriptions_insert).

Workers: two solo-pool worker processes run for the whole of both rows. Worker 1 also
consumes "one.rebill.monthly": the single-worker arm dispatches there (by
FLOWPAY_REBILL_QUEUE_PREFIX, read at call time), so that no process is restarted between
arms.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.db import connection

from bench import data, stack
from bench.config import Context
from bench.stats import Arm, Goal, Ratio, RowResult, Stopwatch, interleave, nice_number, ratios, summarize

QUEUE = "rebill.monthly"
SINGLE_PREFIX = "one."
WORKER_QUEUES = {1: f"payments,{QUEUE},{SINGLE_PREFIX}{QUEUE}", 2: QUEUE}
BROKER_LEFTOVERS = ("default", "webhooks", QUEUE, f"{SINGLE_PREFIX}{QUEUE}")


def _scalar(sql: str, params: list | None = None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def _setup(ctx: Context, n: int) -> None:
    stack.purge_queues(*BROKER_LEFTOVERS)
    if _scalar("SELECT count(*) FROM subscriptions_rebilljob WHERE status IN ('queued', 'leased')"):
        for worker in ctx.workers:  # an arm cut off at the bound: its drains are still running
            worker.restart()
    data.activity_wipe(vacuum=ctx.sizes.vacuum)
    inserted = data.due_subscriptions_insert(fixtures=ctx.fixtures, count=n)
    assert inserted == n, (inserted, n)
    if ctx.sizes.vacuum:
        data.vacuum_analyze(["subscriptions_subscription"])


def rebill_run(ctx: Context, *, n: int, workers: int) -> dict[str, float]:
    """Timed: scheduler + `workers` workers until no job is queued or leased, or the bound."""
    from subscriptions.tasks import rebill_schedule_task

    settings.FLOWPAY_REBILL_QUEUE_PREFIX = SINGLE_PREFIX if workers == 1 else ""
    try:
        started = time.perf_counter()
        summary = rebill_schedule_task()
        scheduled = time.perf_counter()
        finished = _wait_drained(started=started, bound=ctx.sizes.rebill_bound_seconds)
    finally:
        settings.FLOWPAY_REBILL_QUEUE_PREFIX = ""
    paid = _scalar("SELECT count(*) FROM subscriptions_invoice WHERE status = 'paid'")
    seconds = (finished or time.perf_counter()) - started
    return {"seconds": seconds, "schedule_seconds": scheduled - started, "ms_per_subscription": seconds / n * 1000,
            "invoices": summary["invoices"], "paid": paid, "completed": 1 if finished and paid == n else 0,
            **charge_check()}


def _wait_drained(*, started: float, bound: float) -> float | None:
    while time.perf_counter() - started < bound:
        if not _scalar("SELECT count(*) FROM subscriptions_rebilljob WHERE status IN ('queued', 'leased')"):
            return time.perf_counter()
        time.sleep(0.1)
    return None


def charge_check() -> dict[str, float]:
    """Duplicate charges: invoices with more than one transaction, or charged more than once
    at the gateway (the simulator's records)."""
    duplicates = _scalar(
        "SELECT count(*) FROM (SELECT metadata->>'invoice' FROM transactions WHERE metadata ? 'invoice'"
        " GROUP BY 1 HAVING count(*) > 1) d"
    )
    gateway_duplicates = _scalar(
        "SELECT count(*) FROM (SELECT t.metadata->>'invoice' FROM payments_simulatorcharge c"
        " JOIN transactions t ON t.public_id = c.flowpay_reference WHERE t.metadata ? 'invoice'"
        " GROUP BY 1 HAVING count(*) > 1 OR max(c.call_count) > 1) d"
    )
    return {"duplicate_charges": duplicates, "gateway_duplicate_charges": gateway_duplicates}


def insert_select_run(ctx: Context, *, n: int) -> dict[str, float]:
    statement, params = data.invoices_insert_select()
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(statement, params)  # autocommit: the commit is in the timing
        seconds = time.perf_counter() - started
        inserted = cursor.rowcount
    return {"seconds": seconds, "ms_per_subscription": seconds / n * 1000, "invoices": inserted}


def calibrate(ctx: Context) -> tuple[tuple[int, int], int, dict]:
    """Full mode: two untimed probe runs (the row's workers, then one worker) give the time
    per subscription on this machine now; the sizes shrink to what fits in the bound:
    N_large = the largest 1-2-5 number whose projected run takes ≤ 80 % of the bound,
    N_small = N_large / 10; row 5's N is the largest whose single-worker run takes ≤ 40 %
    of it (at least two batches, so that two workers both get a drain message)."""
    small, large = ctx.sizes.rebill_sizes
    if not ctx.sizes.rebill_calibrate:
        return (small, large), ctx.sizes.rebill_workers_n, {}
    probe = ctx.sizes.rebill_probe
    _setup(ctx, probe)
    two = rebill_run(ctx, n=probe, workers=ctx.sizes.rebill_workers)
    _setup(ctx, probe)
    one = rebill_run(ctx, n=probe, workers=1)
    bound = ctx.sizes.rebill_bound_seconds
    per_item, per_item_one = two["seconds"] / probe, one["seconds"] / probe
    fitted_large = min(large, nice_number(0.8 * bound / per_item))
    sizes = (small, large) if fitted_large >= large else (max(10, fitted_large // 10), fitted_large)
    two_batches = 2 * settings.FLOWPAY_REBILL_BATCH_SIZE
    workers_n = min(ctx.sizes.rebill_workers_n, max(two_batches, nice_number(0.4 * bound / per_item_one)))
    info = {"probe_subscriptions": probe, "probe_ms_per_subscription_2_workers": round(per_item * 1000, 1),
            "probe_ms_per_subscription_1_worker": round(per_item_one * 1000, 1),
            "projected_seconds_at_requested_large": round(per_item * large), "bound_seconds": bound}
    return sizes, workers_n, info


def row_rebill(ctx: Context, *, sizes: tuple[int, int], calibration: dict) -> RowResult:
    small, large = sizes
    workers = ctx.sizes.rebill_workers
    arms = []
    for n in (small, large):
        arms.append(Arm(f"rebill@{n}", setup=lambda n=n: _setup(ctx, n), run=lambda n=n: rebill_run(ctx, n=n, workers=workers)))
        arms.append(Arm(f"insert_select@{n}", setup=lambda n=n: _setup(ctx, n), run=lambda n=n: insert_select_run(ctx, n=n)))
    with Stopwatch() as watch:
        samples = interleave(arms, rounds=ctx.sizes.rounds, log=ctx.log)
    specs = [
        Ratio(f"N={n}: scheduler + workers / INSERT … SELECT", (f"rebill@{n}", "seconds"), (f"insert_select@{n}", "seconds"),
              Goal(at_most=15)) for n in (small, large)
    ]
    band = large / small
    specs.append(Ratio(f"scaling: t({large}) / t({small})", (f"rebill@{large}", "seconds"), (f"rebill@{small}", "seconds"),
                       Goal(at_least=0.9 * band, at_most=1.1 * band)))
    notes = []
    requested = ctx.sizes.rebill_sizes
    if sizes != requested:
        notes.append(
            f"N = {requested[0]} and {requested[1]} do not fit in the {ctx.sizes.rebill_bound_seconds:.0f} s bound of one run "
            f"on this machine now (projected {calibration.get('projected_seconds_at_requested_large', 0):.0f} s for "
            f"{requested[1]}): measured N = {small} and {large}, the largest that fit."
        )
    notes += _completion_notes(samples, "rebill@")
    return RowResult(
        id="4", title="rebill N subscriptions due",
        candidate=f"rebill scheduler + {workers} Celery workers (solo pool) until every job is finished",
        baseline="one INSERT … SELECT of the same invoice rows", rounds=ctx.sizes.rounds, arms=summarize(samples),
        ratios=ratios(samples, specs), seconds=watch.seconds, sizes={"n": small, "10n": large, "workers": workers, **calibration},
        checks=_checks(samples), notes=notes,
    )


def row_workers(ctx: Context, *, n: int) -> RowResult:
    arms = [
        Arm("2 workers", setup=lambda: _setup(ctx, n), run=lambda: rebill_run(ctx, n=n, workers=2)),
        Arm("1 worker", setup=lambda: _setup(ctx, n), run=lambda: rebill_run(ctx, n=n, workers=1)),
    ]
    with Stopwatch() as watch:
        samples = interleave(arms, rounds=ctx.sizes.rounds, log=ctx.log)
    specs = [Ratio("speed-up: t(1 worker) / t(2 workers)", ("1 worker", "seconds"), ("2 workers", "seconds"), Goal(at_least=1.6))]
    notes = _completion_notes(samples, "")
    messages = min(math.ceil(n / settings.FLOWPAY_REBILL_BATCH_SIZE), settings.FLOWPAY_REBILL_MAX_PARALLEL_PER_SHARD)
    if messages < 2:
        notes.append(f"N = {n} is one batch ({settings.FLOWPAY_REBILL_BATCH_SIZE}): dispatch sends one drain message, "
                     "so the second worker has nothing to do")
    return RowResult(
        id="5", title="rebill workers", candidate="2 Celery workers draining the same shard", baseline="1 Celery worker",
        rounds=ctx.sizes.rounds, arms=summarize(samples), ratios=ratios(samples, specs), seconds=watch.seconds,
        sizes={"n": n, "drain_messages": messages}, checks=_checks(samples), notes=notes,
    )


def _checks(samples: dict) -> dict:
    rounds = [r for arm, rs in samples.items() if "duplicate_charges" in (rs[0] if rs else {}) for r in rs]
    return {
        "duplicate_charges_total": sum(r["duplicate_charges"] for r in rounds),
        "gateway_duplicate_charges_total": sum(r["gateway_duplicate_charges"] for r in rounds),
        "runs_checked": len(rounds),
    }


def _completion_notes(samples: dict, prefix: str) -> list[str]:
    notes = []
    for arm, rounds in samples.items():
        if arm.startswith(prefix) and any(r.get("completed") == 0 for r in rounds):
            cut = [f"{r['paid']:.0f}" for r in rounds if r.get("completed") == 0]
            notes.append(f"{arm}: {len(cut)} run(s) cut off at the bound or not fully paid (paid: {', '.join(cut)}); "
                         "their seconds are a lower bound")
    return notes
