"""Plans and invoices get a mode (livemode): a plan the creating API key's environment, an
invoice its subscription's, so an API key sees and acts on only its own mode's.

Backfill: a plan is live when a live subscription uses it; an invoice when its subscription
is; a customer when it has a live subscription; invoice events follow their invoice."""

from django.db import migrations, models
from django.db.models import Exists, OuterRef

CHUNK = 1000


def backfill(apps, schema_editor):
    Plan = apps.get_model("subscriptions", "Plan")
    Subscription = apps.get_model("subscriptions", "Subscription")
    Invoice = apps.get_model("subscriptions", "Invoice")
    Customer = apps.get_model("payments", "Customer")
    PaymentMethod = apps.get_model("payments", "PaymentMethod")
    OutboxEvent = apps.get_model("webhooks", "OutboxEvent")
    live = Subscription.objects.filter(livemode=True)
    Plan.objects.filter(Exists(live.filter(plan_id=OuterRef("pk")))).update(livemode=True)
    Invoice.objects.filter(subscription__livemode=True).update(livemode=True)
    Customer.objects.filter(Exists(live.filter(customer_id=OuterRef("pk")))).update(livemode=True)
    PaymentMethod.objects.filter(customer__livemode=True).update(livemode=True)
    invoice_ids = list(Invoice.objects.filter(livemode=True).values_list("public_id", flat=True))
    for start in range(0, len(invoice_ids), CHUNK):
        OutboxEvent.objects.filter(type__startswith="invoice.", payload__id__in=invoice_ids[start:start + CHUNK]).update(livemode=True)


class Migration(migrations.Migration):

    dependencies = [
        ("subscriptions", "0003_idempotency_record"),
        ("payments", "0009_livemode"),
        ("webhooks", "0005_livemode"),
    ]

    operations = [
        migrations.AddField(model_name="invoice", name="livemode", field=models.BooleanField(default=False)),
        migrations.AddField(model_name="plan", name="livemode", field=models.BooleanField(default=False)),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
