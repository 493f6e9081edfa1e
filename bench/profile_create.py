"""Where the time of one create-payment request goes, measured in this process through
Django's full request stack (middleware, DRF, services) with the test client:

- SQL statements per request (django.test.utils.CaptureQueriesContext), grouped by kind and
  table, and database transactions per request (COMMITs of atomic blocks plus statements
  run in autocommit outside any block, each its own transaction);
- Redis commands per request (cache, rate limit, breaker, Celery publishes), counted on
  redis-py's client;
- a pyinstrument profile of a batch of requests (text summary, and HTML next to it).

Same counts for a replayed request and the bare endpoint, for comparison, and per item of
the batch rows: one rebill job (rebill_job_run) and one outbox event (outbox_relay). Run: python -m bench profile [--requests N]
(make bench runs it as part of the report). Needs pyinstrument (requirements-dev.txt).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.load import letter_key

CREATE_BODY = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}
_STATEMENT = re.compile(r'^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)\s*(.*)',
                        re.IGNORECASE | re.DOTALL)
_FROM_TABLE = re.compile(r'\bFROM\s+"?([a-z_]+)"?', re.IGNORECASE)
_FIRST_TABLE = re.compile(r'^"?([a-z_]+)"?', re.IGNORECASE)


@dataclass
class RequestCounts:
    requests: int = 0
    statements: Counter = field(default_factory=Counter)
    commits: int = 0
    autocommit_statements: int = 0
    redis_commands: Counter = field(default_factory=Counter)
    redis_round_trips: int = 0  # a pipeline is one, whatever it holds
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time (the load of other processes does not count)

    def per_request(self) -> dict:
        n = max(1, self.requests)
        return {
            "requests": self.requests,
            "ms_per_request_in_process": round(self.seconds / n * 1000, 2),
            "cpu_ms_per_request": round(self.cpu_seconds / n * 1000, 2),
            "sql_statements": round(sum(self.statements.values()) / n, 2),
            "transactions": round((self.commits + self.autocommit_statements) / n, 2),
            "commits_of_atomic_blocks": round(self.commits / n, 2),
            "autocommit_statements": round(self.autocommit_statements / n, 2),
            "redis_commands": round(sum(self.redis_commands.values()) / n, 2),
            "redis_round_trips": round(self.redis_round_trips / n, 2),
            "statements_by_kind": {k: round(v / n, 2) for k, v in self.statements.most_common()},
            "redis_by_command": {k: round(v / n, 2) for k, v in self.redis_commands.most_common()},
        }


def statement_kind(sql: str) -> str:
    """'SELECT transactions', 'INSERT INTO audit_entry', 'SAVEPOINT', …"""
    match = _STATEMENT.match(sql)
    if not match:
        return sql.split(None, 1)[0].upper() if sql.strip() else "?"
    verb, rest = match.group(1).upper(), match.group(2)
    if verb.endswith("SAVEPOINT"):
        return verb
    table = _FROM_TABLE.search(rest) if verb == "SELECT" else _FIRST_TABLE.match(rest)
    return f"{verb} {table.group(1) if table else '?'}"


@contextmanager
def counting(counts: RequestCounts):
    """Count commits, autocommit statements and Redis commands while the block runs."""
    import redis.client
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper

    original_commit = BaseDatabaseWrapper.commit
    original_execute = redis.client.Redis.execute_command
    original_pipeline = redis.client.Pipeline.execute

    def commit(self):
        counts.commits += 1
        return original_commit(self)

    def execute_command(self, *args, **options):
        counts.redis_commands[str(args[0]).upper()] += 1
        counts.redis_round_trips += 1
        return original_execute(self, *args, **options)

    def pipeline_execute(self, *args, **kwargs):
        for command in self.command_stack:
            counts.redis_commands[str(command[0][0]).upper()] += 1
        counts.redis_round_trips += 1 if self.command_stack else 0
        return original_pipeline(self, *args, **kwargs)

    def autocommit_counter(execute, sql, params, many, context):
        if not context["connection"].in_atomic_block:
            counts.autocommit_statements += 1
        return execute(sql, params, many, context)

    BaseDatabaseWrapper.commit = commit
    redis.client.Redis.execute_command = execute_command
    redis.client.Pipeline.execute = pipeline_execute
    try:
        with connection.execute_wrapper(autocommit_counter):
            yield counts
    finally:
        BaseDatabaseWrapper.commit = original_commit
        redis.client.Redis.execute_command = original_execute
        redis.client.Pipeline.execute = original_pipeline


def _post(client, path: str, body: dict, api_key: str, key: str | None = None):
    return client.post(path, data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {api_key}", HTTP_IDEMPOTENCY_KEY=key or letter_key())


def counted(counts: RequestCounts, operation) -> None:
    """Run `operation` once, adding its statements, time and Redis commands to `counts`
    (inside counting(counts))."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        started, started_cpu = time.perf_counter(), time.process_time()
        operation()
        counts.cpu_seconds += time.process_time() - started_cpu
        counts.seconds += time.perf_counter() - started
    counts.requests += 1
    counts.statements.update(statement_kind(query["sql"]) for query in captured.captured_queries)


def measure(*, path: str, api_key: str, requests: int, expect: int = 201, replay: bool = False) -> RequestCounts:
    """`requests` POSTs, each with a new Idempotency-Key, or (replay) all with the key of a
    first request made beforehand."""
    from django.test import Client

    client = Client()
    counts = RequestCounts()
    key = letter_key("bench-replay") if replay else None
    for _ in range(min(3, requests)):  # warm: imports, connection, cached switches (and the first use of `key`)
        _post(client, path, CREATE_BODY, api_key, key)

    def request() -> None:
        response = _post(client, path, CREATE_BODY, api_key, key)
        if response.status_code != expect:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:300]!r}")

    with counting(counts):
        for _ in range(requests):
            counted(counts, request)
    return counts


def profile(*, path: str, api_key: str, requests: int, out_dir: Path, name: str) -> str:
    """pyinstrument over `requests` requests; writes <name>.html and <name>.txt, returns the text."""
    from django.test import Client
    from pyinstrument import Profiler

    client = Client()
    profiler = Profiler(interval=0.001, use_timing_thread=True)  # this VM's clock calls are slow
    profiler.start()
    for _ in range(requests):
        _post(client, path, CREATE_BODY, api_key)
    profiler.stop()
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.txt").write_text(text)
    (out_dir / f"{name}.html").write_text(profiler.output_html())
    return text


def rebill_job_counts(*, fixtures, jobs: int) -> RequestCounts:
    """Per rebill job (rebill_job_run, in this process): due subscriptions written with SQL,
    invoiced by the scheduler, leased in one batch, then run one by one."""
    from bench import data
    from subscriptions.services.leasing import rebill_lease_batch, worker_identity
    from subscriptions.services.rebill import rebill_job_run
    from subscriptions.services.scheduling import rebill_schedule_due

    data.activity_wipe(vacuum=False)
    data.due_subscriptions_insert(fixtures=fixtures, count=jobs + 1)
    rebill_schedule_due()
    owner = worker_identity("bench-profile")
    job_ids = rebill_lease_batch(queue="rebill.monthly", merchant_id=fixtures.rebill_merchant_id, owner=owner, limit=jobs + 1)
    rebill_job_run(job_id=job_ids[0], owner=owner)  # warm
    counts = RequestCounts()
    with counting(counts):
        for job_id in job_ids[1:]:
            counted(counts, lambda job_id=job_id: rebill_job_run(job_id=job_id, owner=owner))
    return counts


def relay_counts(*, fixtures, events: int) -> dict:
    """One outbox_relay of `events` events (≤ 10,000: one call), per event."""
    from bench import data
    from webhooks.services.outbox import outbox_relay

    data.activity_wipe(vacuum=False)
    data.outbox_events_insert(fixtures=fixtures, count=events)
    counts = RequestCounts()
    with counting(counts):
        counted(counts, outbox_relay)
    per_call = counts.per_request()
    return {"events": events, **{k: (round(v / events, 3) if isinstance(v, (int, float)) else
                                     {kind: round(n / events, 3) for kind, n in v.items()})
                                 for k, v in per_call.items() if k != "requests"}}


def profile_summary(*, api_key: str, requests: int, out_dir: Path, fixtures=None) -> dict:
    """Statement, transaction and Redis counts of create payment and the bare endpoint, plus
    the create profile (files in out_dir). The harness's process must be configured."""
    create = measure(path="/payment/transactions", api_key=api_key, requests=requests)
    replay = measure(path="/payment/transactions", api_key=api_key, requests=requests, replay=True)
    bare = measure(path="/bench/bare", api_key=api_key, requests=requests)
    try:
        profile(path="/payment/transactions", api_key=api_key, requests=requests, out_dir=out_dir, name="profile-create")
        profiled = str(out_dir / "profile-create.html")
    except ImportError:
        profiled = "pyinstrument is not installed (pip install -r requirements-dev.txt)"
    summary = {"create_payment": create.per_request(), "replay": replay.per_request(), "bare": bare.per_request(),
               "profile": profiled}
    if fixtures is not None:  # per item of the batch rows (4-6)
        summary["rebill_job"] = rebill_job_counts(fixtures=fixtures, jobs=requests).per_request()
        summary["outbox_relay_per_event"] = relay_counts(fixtures=fixtures, events=min(10_000, 40 * requests))
    return summary


def main(argv: list[str] | None = None) -> int:
    import argparse

    from bench import stack

    parser = argparse.ArgumentParser(prog="python -m bench profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--out", type=Path, default=stack.ROOT / "bench" / "results" / "profile")
    args = parser.parse_args(argv)
    stack.configure_harness()
    with stack.run_lock():
        return _main(args)


def _main(args) -> int:
    from bench import data, stack
    from gateways.simulator.adapter import simulator_faults_clear

    stack.ensure_database()
    simulator_faults_clear()  # no Redis flush: a benchmark run may be using the same Redis DB
    data.database_wipe()
    fixtures = data.fixtures_create(api_keys=1)
    summary = profile_summary(api_key=fixtures.api_keys[0], requests=args.requests, out_dir=args.out, fixtures=fixtures)
    stack.purge_queues("default", "webhooks")  # the outbox kicks and delivery messages no worker consumes
    print(json.dumps(summary, indent=2))
    print((args.out / "profile-create.txt").read_text() if (args.out / "profile-create.txt").exists() else "")
    return 0
