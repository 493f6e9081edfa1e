"""7. fraud screening: what screening adds to create-payment, in process.

POST /payment/transactions through Django's full request stack (middleware, DRF,
idempotency, the payment service, the simulator) with the test client in the harness's
process, one request at a time: with screening (the platform rules, two merchant rules, a
block list item, the velocity counters in the bench's Redis) and the same request with
screening disabled (FLOWPAY_FRAUD_SCREENING_ENABLED off). Goal: screening adds at most
2 ms at p99.

Interleaving is per request, not per arm: each round sends N pairs, screened and not in
turn (which goes first alternates), so the machine's load at any moment falls on both
alike; each arm's p50 and p99 are over its N requests of the round, and the row reports
the medians over the rounds and the difference of the p99s (per-round min–max).
"""

from __future__ import annotations

import time

from bench import data
from bench.config import Context
from bench.load import letter_key
from bench.stats import Goal, Ratio, RowResult, Stopwatch, ratios, summarize

PATH = "/payment/transactions"
BODY = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}
MERCHANT_RULES = ["block if :amount: > 5000000", "review if :total_charges_per_card_fingerprint_hourly: > 100000"]


def _percentile(ordered: list[float], pct: float) -> float:
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _setup(ctx: Context) -> str:
    """The merchant's rules and a block list item (untimed, once), and its API key."""
    from accounts.models import Merchant
    from core.actors import Actor
    from fraud.screening.lists import list_item_add
    from fraud.screening.rules import rule_create

    merchant = Merchant.objects.get(pk=ctx.fixtures.merchant_id)
    actor = Actor.system("bench")
    for source in MERCHANT_RULES:
        rule_create(merchant=merchant, livemode=False, source=source, actor=actor)
    list_item_add(merchant=merchant, livemode=False, list_name="blocked_emails", value="fraud@bench.example", actor=actor)
    return ctx.fixtures.api_keys[0]


def _one(client, api_key: str, *, screened: bool) -> float:
    from django.test import override_settings

    with override_settings(FLOWPAY_FRAUD_SCREENING_ENABLED=screened):
        started = time.perf_counter()
        response = client.post(PATH, data=BODY, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key}",
                               HTTP_IDEMPOTENCY_KEY=letter_key("bench-fraud"))
        elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"{PATH} answered {response.status_code}: {response.content[:300]!r}")
    return elapsed * 1000


def _round(client, api_key: str, *, pairs: int, number: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {"screened": [], "unscreened": []}
    for index in range(pairs):
        order = (True, False) if (index + number) % 2 == 0 else (False, True)
        for screened in order:
            times["screened" if screened else "unscreened"].append(_one(client, api_key, screened=screened))
    metrics = {}
    for arm, values in times.items():
        ordered = sorted(values)
        metrics[arm] = {"p50_ms": _percentile(ordered, 50), "p99_ms": _percentile(ordered, 99),
                        "ms_per_op": sum(values) / len(values)}
    return metrics


def row_fraud_screening(ctx: Context) -> RowResult:
    from django.test import Client

    from fraud.models import Decision

    data.activity_wipe(vacuum=ctx.sizes.vacuum)
    api_key = _setup(ctx)
    client = Client()
    pairs = ctx.sizes.screening_pairs
    for _ in range(5):  # warm: imports, connections, the card look-up and rule caches, switches
        _one(client, api_key, screened=True)
        _one(client, api_key, screened=False)
    samples: dict[str, list[dict[str, float]]] = {"screened": [], "unscreened": []}
    decisions_before = Decision.objects.count()
    with Stopwatch() as watch:
        for number in range(1, ctx.sizes.rounds + 1):
            metrics = _round(client, api_key, pairs=pairs, number=number)
            for arm, values in metrics.items():
                samples[arm].append(values)
                ctx.log(f"    round {number}/{ctx.sizes.rounds} {arm}: " + ", ".join(f"{k}={v:.3g}" for k, v in values.items()))
    screened_decisions = Decision.objects.count() - decisions_before
    specs = [
        Ratio("p99 added by screening (ms): screened p99 − unscreened p99", ("screened", "p99_ms"), ("unscreened", "p99_ms"),
              Goal(at_most=2), difference=True),
        Ratio("p50 added by screening (ms)", ("screened", "p50_ms"), ("unscreened", "p50_ms"), difference=True),
        Ratio("p99 latency: screened / unscreened", ("screened", "p99_ms"), ("unscreened", "p99_ms")),
    ]
    notes = []
    if screened_decisions != pairs * ctx.sizes.rounds:
        notes.append(f"{screened_decisions} decisions recorded for {pairs * ctx.sizes.rounds} screened requests")
    return RowResult(
        id="9", title="fraud screening",
        candidate="POST /payment/transactions in process (test client), screened: platform + 2 merchant rules, a list, "
                  "velocity counters in Redis",
        baseline="the same request with FLOWPAY_FRAUD_SCREENING_ENABLED off, interleaved per request",
        rounds=ctx.sizes.rounds, arms=summarize(samples), ratios=ratios(samples, specs), seconds=watch.seconds,
        sizes={"pairs_per_round": pairs}, checks={"decisions_recorded": screened_decisions}, notes=notes,
    )
