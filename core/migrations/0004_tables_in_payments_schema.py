"""Moves every FlowPay table (and view, sequence, trigger function) an older release created
in PostgreSQL's `public` schema into FLOWPAY_DB_SCHEMA (`payments`), rows untouched
(core/schema.py). Tables created by any migration after this one, of any app, are created
there directly (the connection's search_path). Nothing to do on SQLite."""

from django.db import migrations


def forwards(apps, schema_editor):
    from core.schema import schema_move_from_public

    schema_move_from_public(connection=schema_editor.connection)


class Migration(migrations.Migration):
    # Any order with the other apps' migrations is right: `migrate` creates the schema before
    # the first migration (core.apps, pre_migrate), so tables created after this move go to
    # the schema, and tables created before it are moved by it.
    dependencies = [("core", "0003_runtime_setting_reason")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
