"""Runbook "High Latency": check the database connection pool.

Shows how Django holds its connections (CONN_MAX_AGE, CONN_HEALTH_CHECKS, psycopg pool in
DATABASES OPTIONS "pool") and, on PostgreSQL, the connections from pg_stat_activity: those
to this database by state, the longest open transaction, and the server-wide use of
max_connections. Problems: usage >= --max-usage-percent (80) or a session "idle in
transaction" for longer than --idle-in-transaction-seconds (60): it holds locks and a
connection while doing nothing."""

from django.db import connection

from core.cli import Column, Report, RunbookCommand, format_duration, non_negative_float

ACTIVITY_SQL = """
SELECT
    count(*) FILTER (WHERE datname = current_database()) AS total,
    count(*) FILTER (WHERE datname = current_database() AND state = 'active') AS active,
    count(*) FILTER (WHERE datname = current_database() AND state = 'idle') AS idle,
    count(*) FILTER (WHERE datname = current_database() AND state IN ('idle in transaction', 'idle in transaction (aborted)')) AS idle_in_transaction,
    max(EXTRACT(EPOCH FROM now() - xact_start)) FILTER (WHERE datname = current_database()) AS longest_transaction_seconds,
    count(*) AS server_total
FROM pg_stat_activity
WHERE backend_type = 'client backend'
"""
IDLE_IN_TRANSACTION_SQL = """
SELECT pid, usename, application_name, host(client_addr), state,
       EXTRACT(EPOCH FROM now() - state_change) AS idle_seconds,
       EXTRACT(EPOCH FROM now() - xact_start) AS transaction_seconds
FROM pg_stat_activity
WHERE datname = current_database() AND state IN ('idle in transaction', 'idle in transaction (aborted)')
ORDER BY state_change
LIMIT 20
"""


class Command(RunbookCommand):
    help = (
        "Database connection usage: Django's connection settings and, on PostgreSQL, pg_stat_activity "
        "counts by state, the longest transaction and max_connections usage. Exits 1 when usage >= 80% "
        "or a session is idle in transaction for more than 60 s."
    )

    def add_arguments(self, parser):
        parser.add_argument("--max-usage-percent", type=non_negative_float, default=80.0, metavar="PERCENT",
                            help="server connections / max_connections at or above this is a problem (80)")
        parser.add_argument("--idle-in-transaction-seconds", type=non_negative_float, default=60.0, metavar="SECONDS",
                            help='a session "idle in transaction" longer than this is a problem (60)')

    def build_report(self, *, max_usage_percent: float, idle_in_transaction_seconds: float, **options) -> Report:
        settings_dict = connection.settings_dict
        pool = (settings_dict.get("OPTIONS") or {}).get("pool")
        report = Report(ok_message="OK: connection usage and open transactions are within limits.")
        report.add_field("vendor", "Database", connection.vendor)
        report.add_field("name", "Name", str(settings_dict.get("NAME")))
        report.add_field("connMaxAge", "CONN_MAX_AGE", settings_dict.get("CONN_MAX_AGE"),
                         _conn_max_age(settings_dict.get("CONN_MAX_AGE")))
        report.add_field("connHealthChecks", "CONN_HEALTH_CHECKS", bool(settings_dict.get("CONN_HEALTH_CHECKS")))
        report.add_field("poolConfigured", "psycopg pool", bool(pool), "configured" if pool else "not configured")
        report.add_field("pool", "Pool options", pool or None, _pool_describe(pool) if pool else "-")
        if connection.vendor != "postgresql":
            return _describe_non_postgres(report)

        total, active, idle, idle_tx, longest, server_total, max_connections, reserved, idle_sessions = _read_activity()
        usage = round(server_total * 100 / max_connections, 1) if max_connections else None
        longest = round(float(longest), 1) if longest is not None else None
        report.add_field("connections", "Connections", {
            "total": total, "active": active, "idle": idle, "idleInTransaction": idle_tx,
            "other": total - active - idle - idle_tx,
        }, f"{total} to this database: {active} active, {idle} idle, {idle_tx} idle in transaction")
        report.add_field("longestTransactionSeconds", "Longest transaction", longest,
                         format_duration(longest) if longest is not None else "-")
        report.add_field("serverConnections", "Server connections", server_total)
        report.add_field("maxConnections", "max_connections", max_connections, f"{max_connections} ({reserved} reserved for superusers)")
        report.add_field("usagePercent", "Usage", usage, f"{usage}% of max_connections (problem at {max_usage_percent:g}%)")
        report.add_table(
            "idleInTransactionSessions", 'Sessions "idle in transaction"',
            [Column("pid", "PID"), Column("user", "USER"), Column("application", "APPLICATION"), Column("client", "CLIENT"),
             Column("idleSeconds", "IDLE S"), Column("transactionSeconds", "TRANSACTION S")],
            idle_sessions,
        )
        if usage is not None and usage >= max_usage_percent:
            report.problem(f"{server_total} of {max_connections} connections in use ({usage}% >= {max_usage_percent:g}%)")
        stale = [s for s in idle_sessions if s["idleSeconds"] > idle_in_transaction_seconds]
        if stale:
            pids = ", ".join(str(s["pid"]) for s in stale)
            report.problem(
                f"{len(stale)} session(s) idle in transaction for more than {idle_in_transaction_seconds:g} s (pid {pids})"
            )
        return report


def _describe_non_postgres(report: Report) -> Report:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            report.add_field("journalMode", "Journal mode", cursor.fetchone()[0])
        report.note("SQLite is a local file: no server, no connection limit, no pg_stat_activity to report.")
    else:
        report.note(f"Connection statistics are not available for {connection.vendor}.")
    report.ok_message = "OK: nothing to check beyond the settings above."
    return report


def _read_activity() -> tuple:
    """(total, active, idle, idle in transaction, longest transaction s, server total,
    max_connections, superuser-reserved, the idle-in-transaction sessions) from PostgreSQL."""
    with connection.cursor() as cursor:
        cursor.execute(ACTIVITY_SQL)
        total, active, idle, idle_tx, longest, server_total = cursor.fetchone()
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
        cursor.execute("SHOW superuser_reserved_connections")
        reserved = int(cursor.fetchone()[0])
        cursor.execute(IDLE_IN_TRANSACTION_SQL)
        idle_sessions = [
            {"pid": pid, "user": user, "application": app or None, "client": client, "state": state,
             "idleSeconds": round(float(idle_s), 1), "transactionSeconds": round(float(tx_s), 1) if tx_s is not None else None}
            for pid, user, app, client, state, idle_s, tx_s in cursor.fetchall()
        ]
    return total, active, idle, idle_tx, longest, server_total, max_connections, reserved, idle_sessions


def _conn_max_age(value) -> str:
    if value is None:
        return "None (persistent connections, never closed for age)"
    if value == 0:
        return "0 (a new connection per request)"
    return f"{value} s"


def _pool_describe(pool) -> str:
    if isinstance(pool, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(pool.items())) or "defaults"
    return "defaults" if pool is True else str(pool)
