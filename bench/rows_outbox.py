"""6. outbox drain: webhooks.services.outbox.outbox_relay (run in the harness, as the relay
task would, called until it relays nothing) turning N unrelayed events into deliveries for
the merchant's matching endpoint and queueing each delivery for sending (Celery messages,
dropped afterwards: no webhook worker runs), vs one UPDATE … RETURNING marking the same
events relayed.

Setup (untimed, before each arm): N events written once with INSERT … SELECT; each arm
starts from them all unrelayed, no deliveries, tables vacuumed.
"""

from __future__ import annotations

import time

from django.db import connection

from bench import data, stack
from bench.config import Context
from bench.stats import Arm, Goal, Ratio, RowResult, Stopwatch, interleave, nice_number, ratios, summarize

MARK_RELAYED = "UPDATE webhooks_outboxevent SET relayed_at = now() WHERE relayed_at IS NULL RETURNING id"
TABLES = ["webhooks_outboxevent", "webhooks_webhookdelivery"]


def _reset(ctx: Context) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE webhooks_outboxevent SET relayed_at = NULL WHERE relayed_at IS NOT NULL")
        cursor.execute("TRUNCATE webhooks_webhookdelivery")
    stack.purge_queues("default", "webhooks")
    if ctx.sizes.vacuum:
        data.vacuum_analyze(TABLES)


def relay_run(ctx: Context, *, n: int) -> dict[str, float]:
    from webhooks.services.outbox import outbox_relay

    started = time.perf_counter()
    relayed = calls = 0
    while True:
        count = outbox_relay()
        calls += 1
        relayed += count
        if not count or time.perf_counter() - started > ctx.sizes.rebill_bound_seconds:
            break
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM webhooks_webhookdelivery")
        deliveries = cursor.fetchone()[0]
    stack.purge_queues("default", "webhooks")
    return {"seconds": seconds, "us_per_event": seconds / n * 1e6, "relayed": relayed, "deliveries": deliveries,
            "relay_calls": calls}


def mark_run(ctx: Context, *, n: int) -> dict[str, float]:
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(MARK_RELAYED)
        marked = len(cursor.fetchall())
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "us_per_event": seconds / n * 1e6, "relayed": marked}


PROBE = 2_000


def _events(ctx: Context, n: int) -> None:
    data.activity_wipe(vacuum=ctx.sizes.vacuum)
    stack.purge_queues("default", "webhooks")
    inserted = data.outbox_events_insert(fixtures=ctx.fixtures, count=n)
    assert inserted == n, (inserted, n)


def calibrate(ctx: Context) -> tuple[int, dict]:
    """Full mode: an untimed relay of 2,000 events gives the time per event; N shrinks to
    the largest 1-2-5 number whose relay is projected to take ≤ 80 % of the bound."""
    requested = ctx.sizes.outbox_events
    if not ctx.sizes.rebill_calibrate:
        return requested, {}
    _events(ctx, PROBE)
    per_event = relay_run(ctx, n=PROBE)["seconds"] / PROBE
    n = min(requested, nice_number(0.8 * ctx.sizes.rebill_bound_seconds / per_event))
    return n, {"probe_events": PROBE, "probe_us_per_event": round(per_event * 1e6),
               "projected_seconds_at_requested": round(per_event * requested), "requested_events": requested}


def row_outbox(ctx: Context) -> RowResult:
    n, calibration = calibrate(ctx)
    _events(ctx, n)
    arms = [
        Arm("outbox_relay", setup=lambda: _reset(ctx), run=lambda: relay_run(ctx, n=n)),
        Arm("update_returning", setup=lambda: _reset(ctx), run=lambda: mark_run(ctx, n=n)),
    ]
    with Stopwatch() as watch:
        samples = interleave(arms, rounds=ctx.sizes.rounds, log=ctx.log)
    specs = [Ratio("outbox_relay / UPDATE … RETURNING", ("outbox_relay", "seconds"), ("update_returning", "seconds"),
                   Goal(at_most=5))]
    notes = []
    if n != ctx.sizes.outbox_events:
        notes.append(f"{ctx.sizes.outbox_events} events do not fit in the {ctx.sizes.rebill_bound_seconds:.0f} s bound of one "
                     f"relay on this machine now (projected {calibration['projected_seconds_at_requested']} s): "
                     f"measured N = {n}, the largest that fits.")
    short = [r["deliveries"] for r in samples["outbox_relay"] if r["deliveries"] != n]
    if short:
        notes.append(f"outbox_relay: rounds with other than {n} deliveries (one matching endpoint): {short}")
    return RowResult(
        id="6", title="outbox drain", candidate="outbox_relay until nothing is left (deliveries created and queued)",
        baseline="one UPDATE … RETURNING marking the events relayed", rounds=ctx.sizes.rounds, arms=summarize(samples),
        ratios=ratios(samples, specs), seconds=watch.seconds,
        sizes={"events": n, "endpoints": len(ctx.fixtures.endpoint_ids), "matching_endpoints": 1, **calibration}, notes=notes,
    )
