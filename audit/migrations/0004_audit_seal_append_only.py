"""The seal table is append-only like the entries (the same trigger function)."""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE TRIGGER audit_seal_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_seal
    FOR EACH ROW EXECUTE FUNCTION audit_entry_reject_change();
CREATE TRIGGER audit_seal_no_truncate
    BEFORE TRUNCATE ON audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_reject_change();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS audit_seal_no_truncate ON audit_seal;
DROP TRIGGER IF EXISTS audit_seal_no_update_delete ON audit_seal;
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER audit_seal_no_update BEFORE UPDATE ON audit_seal
       BEGIN SELECT RAISE(ABORT, 'audit_seal is append-only: UPDATE is not allowed'); END;""",
    """CREATE TRIGGER audit_seal_no_delete BEFORE DELETE ON audit_seal
       BEGIN SELECT RAISE(ABORT, 'audit_seal is append-only: DELETE is not allowed'); END;""",
]
SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS audit_seal_no_update;", "DROP TRIGGER IF EXISTS audit_seal_no_delete;"]


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
    dependencies = [("audit", "0003_audit_seal")]
    operations = [migrations.RunPython(forward, reverse)]
