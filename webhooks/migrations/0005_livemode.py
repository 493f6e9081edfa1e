"""Events and webhook endpoints get a mode (livemode), like transactions: an API key sees
only its own mode's, and a live event is delivered only to live endpoints.

Backfill: an event is live when the object it announces says so (transaction and
subscription payloads carry livemode; the apps above mark their other events). An endpoint
registered before modes existed received both modes' events; it is taken as live when its
merchant has ever held a live API key (missing live events is the costlier mistake), else
as test. docs/api.md tells merchants to check their endpoints' mode."""

from django.db import migrations, models


def backfill(apps, schema_editor):
    OutboxEvent = apps.get_model("webhooks", "OutboxEvent")
    WebhookEndpoint = apps.get_model("webhooks", "WebhookEndpoint")
    ApiKey = apps.get_model("accounts", "ApiKey")
    OutboxEvent.objects.filter(payload__livemode=True).update(livemode=True)
    live_merchants = ApiKey.objects.filter(environment="live").values("merchant_id")
    WebhookEndpoint.objects.filter(merchant_id__in=live_merchants).update(livemode=True)


class Migration(migrations.Migration):

    dependencies = [
        ("webhooks", "0004_idempotency_record"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(model_name="outboxevent", name="livemode", field=models.BooleanField(default=False)),
        migrations.AddField(model_name="webhookendpoint", name="livemode", field=models.BooleanField(default=False)),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
