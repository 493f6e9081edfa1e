"""Refunds and chargebacks get their transaction's mode (livemode), so an API key sees and
acts on only its own mode's; their events are marked with it too."""

from django.db import migrations, models

CHUNK = 1000


def _mark_events(OutboxEvent, prefix: str, public_ids) -> None:
    public_ids = list(public_ids)
    for start in range(0, len(public_ids), CHUNK):
        OutboxEvent.objects.filter(type__startswith=prefix, payload__id__in=public_ids[start:start + CHUNK]).update(livemode=True)


def backfill(apps, schema_editor):
    Refund = apps.get_model("refunds", "Refund")
    Chargeback = apps.get_model("refunds", "Chargeback")
    OutboxEvent = apps.get_model("webhooks", "OutboxEvent")
    Refund.objects.filter(transaction__livemode=True).update(livemode=True)
    Chargeback.objects.filter(transaction__livemode=True).update(livemode=True)
    _mark_events(OutboxEvent, "refund.", Refund.objects.filter(livemode=True).values_list("public_id", flat=True))
    _mark_events(OutboxEvent, "chargeback.", Chargeback.objects.filter(livemode=True).values_list("public_id", flat=True))


class Migration(migrations.Migration):

    dependencies = [
        ("refunds", "0004_chargeback_on_refunded_funds"),
        ("payments", "0009_livemode"),
        ("webhooks", "0005_livemode"),
    ]

    operations = [
        migrations.AddField(model_name="chargeback", name="livemode", field=models.BooleanField(default=False)),
        migrations.AddField(model_name="refund", name="livemode", field=models.BooleanField(default=False)),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
