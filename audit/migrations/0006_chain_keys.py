"""Signed entries and keyed seals (audit.chain): each entry gets the key id, nonce and MAC
of its signature, each seal the id of its key; existing rows keep NULL ("legacy, unkeyed").
occurred_at is set when the entry is built (the MAC covers it) instead of by the INSERT.

Every column is nullable and added without a default, so neither PostgreSQL nor SQLite
updates a row (the append-only triggers stay untouched). SQLite rebuilds the table to change
occurred_at, which drops its triggers: they are created again after it, either way."""

import django.utils.timezone
from django.db import migrations, models

SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS audit_entry_no_update BEFORE UPDATE ON audit_entry
       BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only: UPDATE is not allowed'); END;""",
    """CREATE TRIGGER IF NOT EXISTS audit_entry_no_delete BEFORE DELETE ON audit_entry
       BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only: DELETE is not allowed'); END;""",
    """CREATE TRIGGER IF NOT EXISTS audit_seal_no_update BEFORE UPDATE ON audit_seal
       BEGIN SELECT RAISE(ABORT, 'audit_seal is append-only: UPDATE is not allowed'); END;""",
    """CREATE TRIGGER IF NOT EXISTS audit_seal_no_delete BEFORE DELETE ON audit_seal
       BEGIN SELECT RAISE(ABORT, 'audit_seal is append-only: DELETE is not allowed'); END;""",
]


def restore_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('audit', '0005_merchant_moved_to_accounts'),
    ]

    operations = [
        # Backwards, SQLite's rebuild drops the triggers too: this runs last then.
        migrations.RunPython(migrations.RunPython.noop, restore_sqlite_triggers),
        migrations.AddField(
            model_name='auditentry',
            name='key_id',
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='mac',
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='nonce',
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='auditseal',
            name='key_id',
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='occurred_at',
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now, editable=False),
        ),
        migrations.AddConstraint(
            model_name='auditentry',
            constraint=models.UniqueConstraint(condition=models.Q(('nonce__isnull', False)), fields=('nonce',), name='audit_entry_nonce_unique'),
        ),
        migrations.RunPython(restore_sqlite_triggers, migrations.RunPython.noop),
    ]
