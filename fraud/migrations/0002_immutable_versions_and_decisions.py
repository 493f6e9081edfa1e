"""Rule versions and decisions are written once and never changed: a database trigger
refuses UPDATE of their rows for every client, raw SQL included, and DELETE of rule
versions, so the history of what screening decided, and by which rule text, cannot be
rewritten. (A decision goes only with its payment, which FlowPay never deletes: the
foreign key protects it. Tests flush tables with session_replication_role=replica, which
skips triggers; see tests/conftest.py.)"""

from django.db import migrations

# table -> the operations refused
TABLES = {"fraud_ruleversion": ("UPDATE", "DELETE"), "fraud_decision": ("UPDATE",)}

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION fraud_reject_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '%% is written once: %% is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
""" + "".join(
    f"""
CREATE TRIGGER {table}_written_once
    BEFORE {" OR ".join(ops)} ON {table}
    FOR EACH ROW EXECUTE FUNCTION fraud_reject_change();
"""
    for table, ops in TABLES.items()
)

POSTGRES_REVERSE = "".join(f"DROP TRIGGER IF EXISTS {table}_written_once ON {table};\n" for table in TABLES) + (
    "DROP FUNCTION IF EXISTS fraud_reject_change();"
)

SQLITE_FORWARD = [
    f"""CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
       BEGIN SELECT RAISE(ABORT, '{table} is written once: {op} is not allowed'); END;"""
    for table, ops in TABLES.items() for op in ops
]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS {table}_no_{op.lower()};" for table, ops in TABLES.items() for op in ops]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("fraud", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
