"""Customers and saved payment methods get a mode (livemode), set from the creating API
key's environment: a test key never sees or charges a live customer's saved card.

Backfill: a customer is live when one of its payments is (subscriptions mark those of live
subscriptions); a payment method when its customer is or a live payment used it."""

from django.db import migrations, models
from django.db.models import Exists, OuterRef, Q


def backfill(apps, schema_editor):
    Customer = apps.get_model("payments", "Customer")
    PaymentMethod = apps.get_model("payments", "PaymentMethod")
    Transaction = apps.get_model("payments", "Transaction")
    live = Transaction.objects.filter(livemode=True)
    Customer.objects.filter(Exists(live.filter(customer_id=OuterRef("pk")))).update(livemode=True)
    PaymentMethod.objects.filter(
        Q(customer__livemode=True) | Q(Exists(live.filter(saved_payment_method_id=OuterRef("pk"))))
    ).update(livemode=True)


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0008_attempt_unknown_idx"),
    ]

    operations = [
        migrations.AddField(model_name="customer", name="livemode", field=models.BooleanField(default=False)),
        migrations.AddField(model_name="paymentmethod", name="livemode", field=models.BooleanField(default=False)),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
