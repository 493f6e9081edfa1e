"""The inbox of verified gateway events (inbound PSP webhooks).

Rule: a row exists only for an event whose signature the gateway adapter verified; a
forged, altered or stale delivery is rejected before anything is written. The row is
unique on (gateway, event id), so a redelivered event finds its first copy and has no
second effect. Processing (gateway_events.services) moves the status:

    received → processing → processed | ignored | failed;  failed → processing (retry, replay)

`processing` is claimed with a conditional UPDATE and carries `last_attempt_at`: a row left
`processing` by a killed worker is claimable again once FLOWPAY_INBOUND_EVENT_LEASE_SECONDS
have passed. `ignored` means verified and recorded, but about nothing FlowPay knows (or a
type FlowPay does not act on).
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class InboundEventStatus(models.TextChoices):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


class InboundEvent(models.Model):
    Status = InboundEventStatus

    gateway = models.CharField(max_length=20)
    event_id = models.CharField(max_length=255)  # the gateway's event id (evt_…, WH-…)
    type = models.CharField(max_length=100)  # the gateway's event type (payment_intent.succeeded, …)
    object_type = models.CharField(max_length=64, blank=True)  # payment_intent, refund, dispute, capture, …
    object_reference = models.CharField(max_length=255, blank=True, db_index=True)  # the gateway's id of it
    flowpay_reference = models.CharField(max_length=255, blank=True)  # our transaction id, when echoed back
    livemode = models.BooleanField(default=False)
    # The verified event's object as the gateway sent it (never a card number: gateways send none).
    payload = models.JSONField(default=dict, blank=True)
    gateway_created_at = models.DateTimeField()  # when the gateway says it happened (webhook_lag_seconds)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    note = models.CharField(max_length=500, blank=True)  # what processing did, or why it was ignored
    error = models.TextField(blank=True)  # the last failure (kept until the event is processed)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table keeps the name it was created with; the model moved, the data did not.
        db_table = "payments_inboundevent"
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["status", "received_at"], name="inbound_event_status_idx")]
        constraints = [
            # A redelivered event is the same row: one effect, whatever the concurrency.
            models.UniqueConstraint(fields=["gateway", "event_id"], name="inbound_event_unique_per_gateway"),
            models.CheckConstraint(condition=Q(status__in=InboundEventStatus.values), name="inbound_event_status_valid"),
            models.CheckConstraint(
                condition=~Q(status__in=[InboundEventStatus.PROCESSED, InboundEventStatus.IGNORED])
                | Q(processed_at__isnull=False),
                name="inbound_event_done_has_processed_at",
            ),
            models.CheckConstraint(
                condition=~Q(status=InboundEventStatus.FAILED) | ~Q(error=""), name="inbound_event_failed_has_error",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.event_id} {self.type}"
