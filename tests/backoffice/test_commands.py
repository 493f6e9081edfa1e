"""The back office's runbook command db_pool_stats.

Like every runbook command: a readable table by default, one JSON document with --format
json, exit status 1 when it finds the problem it looks for and 0 when there is none,
usage errors as CommandError (tests/support/commands.py runs them)."""

import time

import psycopg
import pytest
from django.db import connection

from tests.support.commands import run, run_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only")]


# --- db_pool_stats ----------------------------------------------------------------------------
def test_db_pool_stats_on_postgresql():
    text = run("db_pool_stats").out
    assert "Database:" in text and "postgresql" in text and "max_connections" in text and "CONN_MAX_AGE" in text
    document = run_json("db_pool_stats")
    assert document["vendor"] == "postgresql" and document["maxConnections"] > 0
    assert document["connections"]["total"] >= 1 and document["connections"]["active"] >= 1
    assert 0 < document["usagePercent"] < 80
    assert document["poolConfigured"] is False and document["connHealthChecks"] is True
    assert document["idleInTransactionSessions"] == []


def test_db_pool_stats_flags_high_usage():
    document = run_json("db_pool_stats", "--max-usage-percent", "0", expect=1)
    assert "connections in use" in document["problems"][0]


def test_db_pool_stats_flags_a_session_idle_in_transaction():
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, application_name="stuck-worker") as other:
        other.execute("SELECT 1")  # opens a transaction and leaves it idle
        time.sleep(0.3)
        pid = other.info.backend_pid
        outcome = run("db_pool_stats", "--idle-in-transaction-seconds", "0.1", expect=1)
        assert "stuck-worker" in outcome.out and f"(pid {pid})" in outcome.out
        document = run_json("db_pool_stats", "--idle-in-transaction-seconds", "0.1", expect=1)
        assert document["connections"]["idleInTransaction"] >= 1
        assert pid in [s["pid"] for s in document["idleInTransactionSessions"]]
        run_json("db_pool_stats")  # 60 s by default: not yet a problem
        other.rollback()
