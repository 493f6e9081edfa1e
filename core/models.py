"""Abstract building blocks shared by the apps' models (no concrete tables here)."""

import secrets
import string

from django.db import models

_ALPHABET = string.ascii_letters + string.digits


def new_public_id(prefix: str, length: int = 24) -> str:
    """A prefixed, unguessable public id (`txn_…`, `cus_…`); database ids stay internal."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class RuntimeSetting(models.Model):
    """Operator switches that every web and worker process must follow (primary gateway,
    fallback and simplified-flow modes, reload counters). Written only by
    core.runtime.runtime_set, called by the audited operator services (backoffice.ops); processes re-read within seconds."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        # The table keeps the name it was created with; the model moved, the data did not.
        db_table = "flowpay_runtimesetting"

    def __str__(self) -> str:
        return f"{self.key}={self.value!r}"


class IdempotencyRecord(models.Model):
    """One Idempotency-Key use (Stripe semantics).

    Rule: at most one record per (scope, key); its creator runs the request, everyone else
    gets the stored response (same parameters), 422 (other parameters) or 409 (still running).
    """

    class Status(models.TextChoices):
        IN_FLIGHT = "in_flight"
        COMPLETED = "completed"

    scope = models.CharField(max_length=64)  # "merchant:<id>" or "staff:<user id>"
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    locked_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table keeps the name it was created with; the model moved, the data did not.
        db_table = "payments_idempotencyrecord"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_unique_key_per_scope"),
            models.CheckConstraint(
                condition=models.Q(status="in_flight") | models.Q(response_status__isnull=False),
                name="idempotency_completed_has_response",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope}/{self.key}"
