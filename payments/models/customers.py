from django.db import models

from core.models import TimeStampedModel, new_public_id


def _customer_id() -> str:
    return new_public_id("cus")


def _payment_method_id() -> str:
    return new_public_id("pm")


class Customer(TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_customer_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="customers")
    livemode = models.BooleanField(default=False)  # the creating API key's environment
    email = models.EmailField(blank=True)
    name = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The Idempotency-Key use that created it: a request re-run under the same key after a
    # crash finds this customer instead of creating another.
    idempotency_record = models.OneToOneField(
        "core.IdempotencyRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="customer"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["merchant", "-created_at"]), models.Index(fields=["merchant", "email"])]

    def __str__(self) -> str:
        return self.public_id


class PaymentMethod(TimeStampedModel):
    """A saved payment method: the gateway's token and display hints, never card data."""

    public_id = models.CharField(max_length=40, unique=True, default=_payment_method_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="payment_methods")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payment_methods")
    livemode = models.BooleanField(default=False)  # its customer's mode
    gateway = models.CharField(max_length=20)
    gateway_token = models.CharField(max_length=255)
    brand = models.CharField(max_length=20, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    # The Idempotency-Key use that created it: a request re-run under the same key after a
    # crash finds this payment method instead of creating another.
    idempotency_record = models.OneToOneField(
        "core.IdempotencyRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="payment_method"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "gateway", "gateway_token"], name="pm_unique_token_per_customer"),
            models.CheckConstraint(condition=models.Q(last4__regex=r"^([0-9]{4})?$"), name="pm_last4_four_digits"),
        ]

    def __str__(self) -> str:
        return self.public_id
