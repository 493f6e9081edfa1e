"""The runbook's SQL as written: FlowPay's tables in the schema `payments` of a database named
`payments` (`payments.transactions`), an older database's tables moved there by the migration
with every row, and the three queries of docs/runbook.md ("Database queries") run with psql
as the runbook gives them.

They run against a PostgreSQL cluster of this module's own (initdb in a temporary directory,
on a free port, `pg_stat_statements` preloaded as compose preloads it): the shared server
of the test suite is left as it is."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
PG_BIN = Path("/usr/lib/postgresql/15/bin")
RUNBOOK = ROOT / "docs" / "runbook.md"
AUDIT_KEYS = "k1:" + "A" * 43 + "="  # base64 of 32 bytes


def _as_postgres() -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A PostgreSQL 15 cluster with pg_stat_statements preloaded and a database `payments`."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15's server binaries are missing from {PG_BIN} (Debian: postgresql-15)")
    directory = Path(tempfile.mkdtemp(prefix="flowpay-runbook-sql-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    data = directory / "data"
    subprocess.run([*_as_postgres(), str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
    port = _free_port()
    server = subprocess.Popen(
        [*_as_postgres(), str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(directory),
         "-c", "listen_addresses=127.0.0.1", "-c", "shared_preload_libraries=pg_stat_statements",
         "-c", "pg_stat_statements.track=all", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(f"{dsn}/postgres", autocommit=True) as conn:
                    conn.execute("CREATE DATABASE payments")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        with psycopg.connect(f"{dsn}/payments", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")  # docker/postgres/initdb.sql
        yield {"port": port, "url": f"{dsn}/payments"}
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


def _manage(cluster, *args: str, schema: str | None = None) -> str:
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{cluster['port']}/payments", "DEBUG": "0",
           "SECRET_KEY": "runbook-sql-test", "FLOWPAY_AUDIT_CHAIN_KEYS": AUDIT_KEYS, "REDIS_URL": settings.REDIS_URL,
           "CACHE_KEY_PREFIX": f"runbook-sql-{os.getpid()}"}
    env.pop("FLOWPAY_DB_SCHEMA", None)
    if schema:
        env["FLOWPAY_DB_SCHEMA"] = schema
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _row_counts(url: str, schema: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [name for (name,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", [schema])]
        return {name: conn.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0] for name in tables}


SEED = """
from core.actors import Actor
from accounts.services import api_key_create, merchant_create
from payments.services.transactions import PaymentInput, transaction_create
merchant = merchant_create(name="Old release", actor=Actor.system("test"))
api_key_create(merchant=merchant, actor=Actor.system("test"))
for amount in (1000, 2000, 3000):
    transaction_create(merchant=merchant, payment=PaymentInput(amount=amount, currency="USD", payment_method="pm_card_visa",
                       capture_method="automatic"), actor=Actor.system("test"))
"""


def test_an_older_database_is_moved_into_the_payments_schema_without_losing_rows(cluster):
    # given a database as an older release left it: every table in `public`, the
    # transactions table still `payments_transaction`, with payments in it
    _manage(cluster, "migrate", "--noinput", schema="public")
    _manage(cluster, "shell", "-c", SEED, schema="public")
    _manage(cluster, "migrate", "payments", "0010", "--noinput", schema="public")
    _manage(cluster, "migrate", "core", "0003", "--noinput", schema="public")
    before = _row_counts(cluster["url"], "public")
    assert before["payments_transaction"] == 3 and before["audit_entry"] > 0

    # when this release's migrations run
    _manage(cluster, "migrate", "--noinput")

    # then every table is in `payments`, none is left in `public`, and every row is there
    after = _row_counts(cluster["url"], "payments")
    assert _row_counts(cluster["url"], "public") == {}
    renamed = {("transactions" if name == "payments_transaction" else name): count for name, count in before.items()}
    assert set(after) == set(renamed)
    assert {name: count for name, count in after.items() if name != "django_migrations"} == {
        name: count for name, count in renamed.items() if name != "django_migrations"}
    assert after["django_migrations"] == before["django_migrations"] + 2  # core 0004 and payments 0011
    # the application reads them there, audit triggers included (they moved with their tables)
    out = _manage(cluster, "shell", "-c", "from payments.models import Transaction; print(Transaction.objects.count())")
    assert out.strip().splitlines()[-1] == "3"
    with psycopg.connect(cluster["url"], autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE payments.audit_entry SET action = 'forged'")


def _runbook_queries() -> list[str]:
    text = RUNBOOK.read_text()
    section = text[text.index("#### Database queries"):]
    section = section[:section.index("```", section.index("```sh") + 5)]
    return re.findall(r'psql -U postgres -d payments -c "([^"]+)"', section)


def _psql(cluster, sql: str) -> list[list[str]]:
    result = subprocess.run(
        ["psql", "-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(cluster["port"]),
         "-U", "postgres", "-d", "payments", "-c", sql],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [line.split("|") for line in result.stdout.splitlines() if line]


def test_the_runbook_queries_run_as_written(cluster):
    queries = _runbook_queries()
    assert len(queries) == 3
    slow, long_running, locks = queries
    assert "'payments.transactions'::regclass" in locks and "l.pid" in locks
    _manage(cluster, "migrate", "--noinput")  # this release's layout (the test above may not have run)
    _manage(cluster, "shell", "-c", SEED)

    # given a slow statement, and a session holding a row lock on a payment, idle in its transaction
    with psycopg.connect(cluster["url"], autocommit=True) as sleeper:
        for _ in range(2):
            sleeper.execute("SELECT pg_sleep(0.15)")
    holder = psycopg.connect(cluster["url"])
    try:
        holder.execute("SELECT id FROM payments.transactions ORDER BY id LIMIT 1 FOR UPDATE")
        holder_pid = holder.info.backend_pid

        # then the slow-query check lists it (pg_stat_statements preloaded)
        assert any("pg_sleep" in row[0] and float(row[2]) > 100 for row in _psql(cluster, slow))
        # the long-running transactions list the lock holder
        assert any(row[0] == str(holder_pid) and row[2] == "idle in transaction" and "FOR UPDATE" in row[3]
                   for row in _psql(cluster, long_running))
        # and the lock query shows its lock on payments.transactions
        assert ["payments.transactions", "RowShareLock", str(holder_pid), "t"] in _psql(cluster, locks)
    finally:
        holder.close()
    # and the old layout's name is gone
    failing = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(cluster["port"]), "-U", "postgres", "-d", "payments",
                              "-c", "SELECT 'public.payments_transaction'::regclass"], capture_output=True, text=True)
    assert failing.returncode != 0 and "does not exist" in failing.stderr
