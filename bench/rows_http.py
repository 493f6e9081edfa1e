"""HTTP rows, against gunicorn on 127.0.0.1 serving bench.settings:

1. create payment: POST /payment/transactions (simulator, pm_card_visa, a new
   Idempotency-Key per request) vs the bare endpoint (POST /bench/bare), wrk, C connections.
2. idempotent replay: the same key and body every time (the first request made before the
   arm) vs the bare endpoint.
3. capture and refund: captures of authorized payments through the API, and refunds through
   the API until the Celery worker has them succeeded, vs the bare endpoint's one UPDATE.
"""

from __future__ import annotations

import time

from django.db import connection

from bench import data, load
from bench.config import Context
from bench.stats import Arm, Goal, Ratio, RowResult, Stopwatch, interleave, ratios, summarize

CREATE_PATH = "/payment/transactions"
BARE_PATH = "/bench/bare"
BODY = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}


def _wipe(ctx: Context) -> None:
    """Full mode: every arm starts from empty, vacuumed tables. Smoke: the few rows a tiny
    arm writes are left (the wipe would take longer than the arm)."""
    if ctx.sizes.vacuum:
        data.activity_wipe(vacuum=True)


def _wrk_arm(ctx: Context, *, path: str, idempotency: str = "unique", key: str = "") -> dict[str, float]:
    result = load.wrk_run(url=ctx.server_url, path=path, body=BODY, api_keys=ctx.fixtures.api_keys,
                          connections=ctx.sizes.connections, seconds=ctx.sizes.wrk_seconds, idempotency=idempotency,
                          idempotency_key=key)
    return result.metrics()


def _warm_up(ctx: Context, paths: list[str]) -> None:
    """Untimed: each gunicorn worker imports and connects before the first round."""
    for path in paths:
        if ctx.sizes.warmup_seconds:
            load.wrk_run(url=ctx.server_url, path=path, body=BODY, api_keys=ctx.fixtures.api_keys,
                         connections=ctx.sizes.connections, seconds=ctx.sizes.warmup_seconds)
        else:
            requests = [load.PoolRequest(path=path, body=BODY, api_key=k) for k in ctx.fixtures.api_keys[:8]]
            load.pool_run(url=ctx.server_url, requests=requests, connections=8)


def _error_notes(samples: dict) -> list[str]:
    notes = []
    for arm, rounds in samples.items():
        bad = sum(r.get("non_2xx", 0) for r in rounds)
        broken = sum(r.get("socket_errors", 0) for r in rounds)
        if bad or broken:
            notes.append(f"{arm}: {bad:.0f} non-2xx answers and {broken:.0f} socket errors over the rounds (counted in rps)")
    return notes


def _http_row(ctx: Context, *, row_id: str, title: str, candidate: str, arms: list[Arm], goal: Goal) -> RowResult:
    with Stopwatch() as watch:
        samples = interleave(arms, rounds=ctx.sizes.rounds, log=ctx.log)
    name = arms[0].name
    specs = [
        Ratio("throughput: bare rps / candidate rps", ("bare", "rps"), (name, "rps"), goal),
        Ratio("p50 latency: candidate / bare", (name, "p50_ms"), ("bare", "p50_ms")),
        Ratio("p99 latency: candidate / bare", (name, "p99_ms"), ("bare", "p99_ms"), goal),
    ]
    return RowResult(
        id=row_id, title=title, candidate=candidate, baseline="bare DRF endpoint: 1 SELECT (API key) + 1 INSERT, 201 JSON",
        rounds=ctx.sizes.rounds, arms=summarize(samples), ratios=ratios(samples, specs), seconds=watch.seconds,
        sizes={"connections": ctx.sizes.connections, "seconds_per_arm": ctx.sizes.wrk_seconds}, notes=_error_notes(samples),
    )


def row_create_payment(ctx: Context) -> RowResult:
    _warm_up(ctx, [CREATE_PATH, BARE_PATH])
    arms = [
        Arm("create", setup=lambda: _wipe(ctx), run=lambda: _wrk_arm(ctx, path=CREATE_PATH)),
        Arm("bare", setup=lambda: _wipe(ctx), run=lambda: _wrk_arm(ctx, path=BARE_PATH)),
    ]
    return _http_row(ctx, row_id="1", title="create payment", arms=arms, goal=Goal(at_most=4),
                     candidate="POST /payment/transactions, simulator, pm_card_visa, a new Idempotency-Key per request")


def row_idempotent_replay(ctx: Context) -> RowResult:
    key = load.letter_key("bench-replay")

    def first_request() -> None:
        _wipe(ctx)
        result = load.pool_run(url=ctx.server_url, connections=1, requests=[
            load.PoolRequest(path=CREATE_PATH, body=BODY, api_key=ctx.fixtures.api_keys[0], idempotency_key=key)])
        if result.statuses != {201: 1}:
            raise RuntimeError(f"the replayed request's first run answered {result.statuses}")

    _warm_up(ctx, [CREATE_PATH])
    arms = [
        Arm("replay", setup=first_request, run=lambda: _wrk_arm(ctx, path=CREATE_PATH, idempotency="fixed", key=key)),
        Arm("bare", setup=lambda: _wipe(ctx), run=lambda: _wrk_arm(ctx, path=BARE_PATH)),
    ]
    return _http_row(ctx, row_id="2", title="idempotent replay", arms=arms, goal=Goal(at_most=1.5),
                     candidate="POST /payment/transactions, the same Idempotency-Key and body every time (replayed)")


# --- row 3: capture and refund ----------------------------------------------------------
def _payments(ctx: Context, *, count: int, capture_method: str) -> list[str]:
    """`count` payments of the HTTP merchant, made through the service (untimed setup)."""
    from accounts.models import Merchant
    from core.actors import Actor
    from payments.services.transactions import PaymentInput, transaction_create

    merchant = Merchant.objects.get(pk=ctx.fixtures.merchant_id)
    payment = PaymentInput(amount=1999, currency="USD", payment_method="pm_card_visa", capture_method=capture_method)
    return [transaction_create(merchant=merchant, payment=payment, actor=Actor.system("bench")).public_id for _ in range(count)]


def _pool_metrics(result: load.PoolResult, ops: int) -> dict[str, float]:
    http = result.http_result()
    return {"ms_per_op": http.seconds / max(1, ops) * 1000, "p50_ms": http.p50_ms, "p99_ms": http.p99_ms,
            "non_2xx": http.non_2xx}


def _keys(ctx: Context, index: int) -> str:
    return ctx.fixtures.api_keys[index % len(ctx.fixtures.api_keys)]


class CaptureRefund:
    """The three arms of row 3 and their untimed setups."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.ops = ctx.sizes.ops
        self.targets: list[str] = []
        self.rows: list[int] = []

    def setup_capture(self) -> None:
        _wipe(self.ctx)
        self.targets = _payments(self.ctx, count=self.ops, capture_method="manual")

    def run_capture(self) -> dict[str, float]:
        requests = [load.PoolRequest(path=f"{CREATE_PATH}/{txn}/capture", body={}, api_key=_keys(self.ctx, i))
                    for i, txn in enumerate(self.targets)]
        result = load.pool_run(url=self.ctx.server_url, requests=requests, connections=self.ctx.sizes.pool_connections)
        return _pool_metrics(result, self.ops)

    def setup_refund(self) -> None:
        _wipe(self.ctx)
        self.targets = _payments(self.ctx, count=self.ops, capture_method="automatic")

    def run_refund(self) -> dict[str, float]:
        """From the first POST until the worker has every refund succeeded."""
        requests = [load.PoolRequest(path=f"{CREATE_PATH}/{txn}/refund", body={"amount": 1999, "reason": "bench"},
                                     api_key=_keys(self.ctx, i)) for i, txn in enumerate(self.targets)]
        result = load.pool_run(url=self.ctx.server_url, requests=requests, connections=self.ctx.sizes.pool_connections)
        done_at = _wait_refunds(self.targets, started=result.started, bound=self.ctx.sizes.rebill_bound_seconds)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY e), percentile_cont(0.99) WITHIN GROUP (ORDER BY e), count(*)"
                " FROM (SELECT extract(epoch FROM r.succeeded_at - r.created_at) * 1000 AS e FROM refunds_refund r"
                f" {REFUNDS_OF} AND r.status = 'succeeded') t", [self.targets],
            )
            p50, p99, succeeded = cursor.fetchone()
        api = result.http_result()
        return {"ms_per_op": (done_at - result.started) / self.ops * 1000, "p50_ms": float(p50 or 0), "p99_ms": float(p99 or 0),
                "api_p50_ms": api.p50_ms, "succeeded": succeeded, "non_2xx": api.non_2xx}

    def setup_bare(self) -> None:
        _wipe(self.ctx)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {data.BARE_TABLE} (merchant_id, api_key_id, amount, currency, idempotency_key, status, created_at,"
                " updated_at) SELECT %s, 0, 1999, 'USD', 'setup-' || g, 'created', now(), now() FROM generate_series(1, %s) g"
                " RETURNING id", [self.ctx.fixtures.merchant_id, self.ops],
            )
            self.rows = [row[0] for row in cursor.fetchall()]

    def run_bare(self) -> dict[str, float]:
        requests = [load.PoolRequest(path=f"{BARE_PATH}/{row}", body={}, api_key=_keys(self.ctx, i))
                    for i, row in enumerate(self.rows)]
        result = load.pool_run(url=self.ctx.server_url, requests=requests, connections=self.ctx.sizes.pool_connections)
        return _pool_metrics(result, self.ops)


REFUNDS_OF = "JOIN transactions t ON t.id = r.transaction_id WHERE t.public_id = ANY(%s)"


def _wait_refunds(targets: list[str], *, started: float, bound: float) -> float:
    """monotonic() when the refunds of every target are succeeded (or when the bound ran out)."""
    while time.monotonic() - started < bound:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM refunds_refund r {REFUNDS_OF} AND r.status = 'succeeded'", [targets])
            if cursor.fetchone()[0] >= len(targets):
                return time.monotonic()
        time.sleep(0.02)
    return time.monotonic()


def row_capture_refund(ctx: Context) -> RowResult:
    """Needs a Celery worker consuming the payments queue (refunds.execute)."""
    row = CaptureRefund(ctx)
    arms = [
        Arm("capture", setup=row.setup_capture, run=row.run_capture),
        Arm("refund", setup=row.setup_refund, run=row.run_refund),
        Arm("bare", setup=row.setup_bare, run=row.run_bare),
    ]
    with Stopwatch() as watch:
        samples = interleave(arms, rounds=ctx.sizes.rounds, log=ctx.log)
    specs = [
        Ratio("capture time per op / bare UPDATE", ("capture", "ms_per_op"), ("bare", "ms_per_op")),
        Ratio("capture p50 / bare p50", ("capture", "p50_ms"), ("bare", "p50_ms")),
        Ratio("refund (API to succeeded) time per op / bare UPDATE", ("refund", "ms_per_op"), ("bare", "ms_per_op")),
        Ratio("refund p50 (created to succeeded) / bare p50", ("refund", "p50_ms"), ("bare", "p50_ms")),
    ]
    notes = _error_notes(samples)
    incomplete = [r["succeeded"] for r in samples["refund"] if r["succeeded"] < ctx.sizes.ops]
    if incomplete:
        notes.append(f"refund: some rounds ended with fewer than {ctx.sizes.ops} refunds succeeded: {incomplete}")
    return RowResult(
        id="3", title="capture and refund",
        candidate="POST …/capture of an authorized payment; POST …/refund until the Celery worker has it succeeded",
        baseline="bare DRF endpoint: 1 SELECT (API key) + 1 UPDATE, 200 JSON",
        rounds=ctx.sizes.rounds, arms=summarize(samples), ratios=ratios(samples, specs), seconds=watch.seconds,
        sizes={"ops_per_arm": ctx.sizes.ops, "connections": ctx.sizes.pool_connections}, notes=notes,
    )
