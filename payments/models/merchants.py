from django.db import models

from flowpay.models import TimeStampedModel, new_public_id


def _merchant_id() -> str:
    return new_public_id("mer")


class Merchant(TimeStampedModel):
    public_id = models.CharField(max_length=40, unique=True, default=_merchant_id, editable=False)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"
