from django.db import migrations, models


def create_runtime_setting_table(apps, schema_editor):
    """The table was created under the name flowpay_runtimesetting before the model lived in
    core; a database migrated then already has it, a new database does not."""
    model = apps.get_model("core", "RuntimeSetting")
    if model._meta.db_table not in schema_editor.connection.introspection.table_names():
        schema_editor.create_model(model)


def drop_runtime_setting_table(apps, schema_editor):
    schema_editor.delete_model(apps.get_model("core", "RuntimeSetting"))


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="RuntimeSetting",
                    fields=[
                        ("key", models.CharField(max_length=64, primary_key=True, serialize=False)),
                        ("value", models.JSONField()),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        ("updated_by", models.CharField(blank=True, max_length=150)),
                    ],
                    options={"db_table": "flowpay_runtimesetting"},
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(create_runtime_setting_table, drop_runtime_setting_table),
    ]
