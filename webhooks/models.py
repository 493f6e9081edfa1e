"""Events for merchants: the transactional outbox.

Rule: an event is written in the same database transaction as the state change it
announces (outbox_publish), so an event exists if and only if the change was committed.
Delivering events to merchant endpoints (relay, signatures, retries, dead letters) is the
webhook issue's work; until then events accumulate here, listed by merchant.
"""

from django.db import models

from flowpay.models import new_public_id


def _event_id() -> str:
    return new_public_id("evt")


class OutboxEvent(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=_event_id, editable=False)
    merchant = models.ForeignKey("payments.Merchant", on_delete=models.PROTECT, related_name="events")
    type = models.CharField(max_length=64, db_index=True)  # e.g. invoice.paid, transaction.completed
    payload = models.JSONField()  # the object as the API renders it, at the time of the change
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    relayed_at = models.DateTimeField(null=True, blank=True)  # handed to the delivery relay

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["merchant", "-created_at"]),
            models.Index(fields=["id"], condition=models.Q(relayed_at__isnull=True), name="outbox_unrelayed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"
