"""FlowPay's PostgreSQL schema (FLOWPAY_DB_SCHEMA, `payments`): the tables of every app live
there, so the runbook's SQL (`'payments.transactions'::regclass`) runs as written.

How every table gets there, whoever creates it:
- each connection's search_path is `<schema>, public` (flowpay/settings/database.py), so an
  unqualified CREATE TABLE goes to the schema and every query finds its tables there;
- `migrate` creates the schema before the first migration runs (`schema_ensure`, on
  pre_migrate), so even a fresh database never has a FlowPay table in `public`;
- core's migration 0004 moves whatever an older release created in `public` (tables with
  their indexes, constraints, triggers and owned sequences; views; standalone sequences;
  functions such as the audit triggers'), keeping every row: ALTER … SET SCHEMA changes
  the namespace only. Objects that belong to an extension stay where the extension is.
SQLite (make run) has no schemas: nothing to do there.
"""

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper


def schema_ensure(*, connection: BaseDatabaseWrapper) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {connection.ops.quote_name(settings.FLOWPAY_DB_SCHEMA)}")


_MOVABLE_RELATIONS = """
SELECT c.relname, c.relkind FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace
  AND (c.relkind IN ('r', 'p', 'v', 'm', 'f')
       OR (c.relkind = 'S' AND NOT EXISTS (            -- sequences no column owns
           SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                                     AND d.deptype IN ('a', 'i'))))
  AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.objid = c.oid AND e.classid = 'pg_class'::regclass
                                            AND e.deptype = 'e')
ORDER BY c.relkind, c.relname
"""
_MOVABLE_FUNCTIONS = """
SELECT p.oid::regprocedure::text FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT FROM pg_depend e WHERE e.objid = p.oid AND e.classid = 'pg_proc'::regclass AND e.deptype = 'e')
"""
_STATEMENT = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE", "S": "SEQUENCE"}


def schema_move_from_public(*, connection: BaseDatabaseWrapper) -> list[str]:
    """Move FlowPay's objects from `public` into the schema (the module's rules); returns
    what was moved. Run again, it finds nothing to move."""
    if connection.vendor != "postgresql" or settings.FLOWPAY_DB_SCHEMA == "public":
        return []
    schema_ensure(connection=connection)
    target = connection.ops.quote_name(settings.FLOWPAY_DB_SCHEMA)
    moved = []
    with connection.cursor() as cursor:
        cursor.execute(_MOVABLE_RELATIONS)
        for name, kind in cursor.fetchall():
            cursor.execute(f"ALTER {_STATEMENT[kind]} public.{connection.ops.quote_name(name)} SET SCHEMA {target}")
            moved.append(name)
        cursor.execute(_MOVABLE_FUNCTIONS)
        for (signature,) in cursor.fetchall():
            # regprocedure text is already quoted as needed, e.g. audit_entry_reject_change()
            cursor.execute(f"ALTER FUNCTION public.{signature} SET SCHEMA {target}")
            moved.append(signature)
    return moved
