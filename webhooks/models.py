"""Events for merchants: the transactional outbox.

Rule: an event is written in the same database transaction as the state change it
announces (outbox_publish), so an event exists if and only if the change was committed.
Delivering events to merchant endpoints (relay, signatures, retries, dead letters) is the
webhook issue's work; until then events accumulate here, listed by merchant.
"""

from django.db import models

from core.models import new_public_id


def _event_id() -> str:
    return new_public_id("evt")


class OutboxEvent(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=_event_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="events")
    # The mode of the object it announces: a live event goes only to live endpoints.
    livemode = models.BooleanField(default=False)
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


def _endpoint_id() -> str:
    return new_public_id("we")


def _delivery_id() -> str:
    return new_public_id("whd")


class WebhookEndpoint(models.Model):
    """A merchant's URL that receives events, signed with the endpoint's own secret.

    The secret is kept (it signs every delivery) and shown to the merchant once, when the
    endpoint is created."""

    class Status(models.TextChoices):
        ENABLED = "enabled"
        DISABLED = "disabled"

    public_id = models.CharField(max_length=40, unique=True, default=_endpoint_id, editable=False)
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="webhook_endpoints")
    livemode = models.BooleanField(default=False)  # the creating API key's environment: receives only its mode's events
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    enabled_events = models.JSONField(default=list, blank=True)  # event types; empty means every event
    secret = models.CharField(max_length=100, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ENABLED)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The Idempotency-Key use that created it: a request re-run under the same key after a
    # crash finds this endpoint (and shows the same secret) instead of creating another.
    idempotency_record = models.OneToOneField(
        "core.IdempotencyRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_endpoint"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=["enabled", "disabled"]), name="endpoint_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.url}"

    def accepts(self, event_type: str) -> bool:
        return not self.enabled_events or event_type in self.enabled_events or "*" in self.enabled_events


class WebhookDelivery(models.Model):
    """One event sent to one endpoint: pending → delivering → succeeded, or → retrying (with
    backoff and jitter) until the retry window (about three days) ends → dead (re-sendable).

    Rule: at most one delivery per (event, endpoint); claims are conditional UPDATEs, so two
    workers never send the same delivery at once."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERING = "delivering"
        RETRYING = "retrying"
        SUCCEEDED = "succeeded"
        DEAD = "dead"

    public_id = models.CharField(max_length=40, unique=True, default=_delivery_id, editable=False)
    event = models.ForeignKey(OutboxEvent, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Retries stop (dead letter) once this is older than the retry window; a re-send restarts it.
    retry_window_started_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_once_per_event_endpoint"),
            models.CheckConstraint(condition=models.Q(status__in=["pending", "delivering", "retrying", "succeeded", "dead"]),
                                   name="delivery_status_valid"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=models.Q(status__in=["pending", "retrying"]), name="delivery_due_idx"),
            models.Index(fields=["endpoint", "-id"]),
            # The dead letters the dashboard counts and lists.
            models.Index(fields=["-id"], condition=models.Q(status="dead"), name="delivery_dead_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.status}"
