"""Where the time of one create-payment request goes, measured in this process through
Django's full request stack (middleware, DRF, services) with the test client:

- SQL statements per request (django.test.utils.CaptureQueriesContext), grouped by kind and
  table, and database transactions per request (COMMITs of atomic blocks plus statements
  run in autocommit outside any block, each its own transaction);
- Redis commands per request (cache, rate limit, breaker, Celery publishes), counted on
  redis-py's client;
- a pyinstrument profile of a batch of requests (text summary, and HTML next to it).

Same for the bare endpoint, for comparison. Run: python -m bench profile [--requests N]
(make bench runs it as part of the report). Needs pyinstrument (requirements-dev.txt).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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
    seconds: float = 0.0

    def per_request(self) -> dict:
        n = max(1, self.requests)
        return {
            "requests": self.requests,
            "ms_per_request_in_process": round(self.seconds / n * 1000, 2),
            "sql_statements": round(sum(self.statements.values()) / n, 2),
            "transactions": round((self.commits + self.autocommit_statements) / n, 2),
            "commits_of_atomic_blocks": round(self.commits / n, 2),
            "autocommit_statements": round(self.autocommit_statements / n, 2),
            "redis_commands": round(sum(self.redis_commands.values()) / n, 2),
            "statements_by_kind": {k: round(v / n, 2) for k, v in self.statements.most_common()},
            "redis_by_command": {k: round(v / n, 2) for k, v in self.redis_commands.most_common()},
        }


def statement_kind(sql: str) -> str:
    """'SELECT payments_transaction', 'INSERT INTO audit_entry', 'SAVEPOINT', …"""
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
        return original_execute(self, *args, **options)

    def pipeline_execute(self, *args, **kwargs):
        for command in self.command_stack:
            counts.redis_commands[str(command[0][0]).upper()] += 1
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


def _post(client, path: str, body: dict, api_key: str):
    return client.post(path, data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {api_key}", HTTP_IDEMPOTENCY_KEY=f"bench-{uuid.uuid4().hex}")


def measure(*, path: str, api_key: str, requests: int, expect: int = 201) -> RequestCounts:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    counts = RequestCounts()
    for _ in range(min(3, requests)):  # warm: imports, connection, cached switches
        _post(client, path, CREATE_BODY, api_key)
    with counting(counts):
        for _ in range(requests):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = _post(client, path, CREATE_BODY, api_key)
                counts.seconds += time.perf_counter() - started
            if response.status_code != expect:
                raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:300]!r}")
            counts.requests += 1
            counts.statements.update(statement_kind(query["sql"]) for query in captured.captured_queries)
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


def profile_summary(*, api_key: str, requests: int, out_dir: Path) -> dict:
    """Statement, transaction and Redis counts of create payment and the bare endpoint, plus
    the create profile (files in out_dir). The harness's process must be configured."""
    create = measure(path="/payment/transactions", api_key=api_key, requests=requests)
    bare = measure(path="/bench/bare", api_key=api_key, requests=requests)
    try:
        profile(path="/payment/transactions", api_key=api_key, requests=requests, out_dir=out_dir, name="profile-create")
        profiled = str(out_dir / "profile-create.html")
    except ImportError:
        profiled = "pyinstrument is not installed (pip install -r requirements-dev.txt)"
    return {"create_payment": create.per_request(), "bare": bare.per_request(), "profile": profiled}


def main(argv: list[str] | None = None) -> int:
    import argparse

    from bench import data, stack

    parser = argparse.ArgumentParser(prog="python -m bench profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--out", type=Path, default=stack.ROOT / "bench" / "results" / "profile")
    args = parser.parse_args(argv)
    stack.configure_harness()
    stack.ensure_database()
    stack.redis_flush()
    data.database_wipe()
    fixtures = data.fixtures_create(api_keys=1)
    summary = profile_summary(api_key=fixtures.api_keys[0], requests=args.requests, out_dir=args.out)
    print(json.dumps(summary, indent=2))
    print((args.out / "profile-create.txt").read_text() if (args.out / "profile-create.txt").exists() else "")
    return 0
