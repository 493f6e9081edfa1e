"""Row 7, ledger postings on the create-payment path: POST /payment/transactions (simulator,
pm_card_visa, a new Idempotency-Key per request), wrk, C connections, against the run's
server (the capture posts to the ledger in its database transaction) and against a second
gunicorn of the same configuration whose create path skips the posting
(bench.settings_without_ledger). Goal: with postings, throughput within 15 % of without.

Each arm sends its own merchant's API keys (a request still queued at one server may finish
during the other arm), and its payments are checked afterwards: every completed one of the
first arm has its ledger posting, none of the second (else the row is not measuring what it
says)."""

from __future__ import annotations

from bench import data, load
from bench.config import Context
from bench.stats import Arm, Goal, Ratio, RowResult, Stopwatch, interleave, ratios, summarize

CREATE_PATH = "/payment/transactions"
BODY = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}


def _wipe() -> None:
    data.activity_wipe(vacuum=False)


def _baseline_keys(count: int) -> tuple[int, list[str]]:
    """The baseline arm's own merchant and API keys (untimed setup), so that each arm's
    payments are told apart: a request still queued at one server may finish during the
    other arm."""
    from accounts.services import api_key_create, merchant_create
    from core.actors import Actor

    actor = Actor.system("bench")
    merchant = merchant_create(name="Bench ledger baseline", actor=actor)
    return merchant.pk, [api_key_create(merchant=merchant, label=f"bench-nl-{i}", actor=actor).secret for i in range(count)]


def _arm(ctx: Context, url: str, *, merchant_id: int, api_keys: list[str], posts: bool):
    def run() -> dict[str, float]:
        from django.db.models import Count, Exists, OuterRef

        from ledger.models import LedgerTransaction
        from payments.models import Transaction

        metrics = load.wrk_run(url=url, path=CREATE_PATH, body=BODY, api_keys=api_keys,
                               connections=ctx.sizes.connections, seconds=ctx.sizes.wrk_seconds).metrics()
        posted_exists = Exists(LedgerTransaction.objects.filter(kind="payment", source_id=OuterRef("public_id")))
        # One statement (one snapshot): a request still finishing commits between two counts.
        counts = Transaction.objects.filter(merchant_id=merchant_id, status="completed").aggregate(
            total=Count("pk"), posted=Count("pk", filter=posted_exists))
        posted, total = counts["posted"], counts["total"]
        if posted != (total if posts else 0):
            raise RuntimeError(f"{total} payments completed, {posted} of them posted to the ledger: "
                               "the arm did not run as meant")
        return metrics

    return run


def row_ledger_postings(ctx: Context) -> RowResult:
    baseline_merchant, baseline_keys = _baseline_keys(len(ctx.fixtures.api_keys))
    for url, keys in ((ctx.server_url, ctx.fixtures.api_keys), (ctx.ledger_off_url, baseline_keys)):  # untimed warm-up
        load.pool_run(url=url, requests=[load.PoolRequest(path=CREATE_PATH, body=BODY, api_key=k) for k in keys[:8]],
                      connections=8)
    arms = [
        Arm("with_postings", setup=_wipe, run=_arm(ctx, ctx.server_url, merchant_id=ctx.fixtures.merchant_id,
                                                   api_keys=ctx.fixtures.api_keys, posts=True)),
        Arm("postings_skipped", setup=_wipe, run=_arm(ctx, ctx.ledger_off_url, merchant_id=baseline_merchant,
                                                      api_keys=baseline_keys, posts=False)),
    ]
    with Stopwatch() as watch:
        samples = interleave(arms, rounds=ctx.sizes.rounds, log=ctx.log)
    specs = [
        Ratio("throughput: postings skipped rps / with postings rps", ("postings_skipped", "rps"), ("with_postings", "rps"),
              Goal(at_most=1.15)),
        Ratio("p50 latency: with postings / skipped", ("with_postings", "p50_ms"), ("postings_skipped", "p50_ms")),
        Ratio("p99 latency: with postings / skipped", ("with_postings", "p99_ms"), ("postings_skipped", "p99_ms")),
    ]
    return RowResult(
        id="7", title="ledger postings on create payment",
        candidate="POST /payment/transactions, the capture posted to the ledger (as in production)",
        baseline="the same request on a second gunicorn whose create path skips the ledger posting",
        rounds=ctx.sizes.rounds, arms=summarize(samples), ratios=ratios(samples, specs), seconds=watch.seconds,
        sizes={"connections": ctx.sizes.connections, "seconds_per_arm": ctx.sizes.wrk_seconds},
    )
