"""The immutable audit log.

Rule: an entry is written once, in the same database transaction as the action it
records, and never changed or removed. The model and its QuerySet refuse updates and
deletes; a PostgreSQL (and SQLite) trigger rejects UPDATE, DELETE and TRUNCATE from any
client, raw SQL included (migration 0002).
"""

from django.db import models


class AuditLogImmutable(Exception):
    """Raised on any attempt to change or remove an audit entry."""


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogImmutable("audit entries are append-only: update() is refused")

    def delete(self):
        raise AuditLogImmutable("audit entries are append-only: delete() is refused")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogImmutable("audit entries are append-only: bulk_update() is refused")

    def update_or_create(self, *args, **kwargs):
        raise AuditLogImmutable("audit entries are append-only: update_or_create() is refused")


class AuditEntry(models.Model):
    class Result(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        DENIED = "denied"

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_type = models.CharField(max_length=16, db_index=True)
    actor_id = models.CharField(max_length=150, db_index=True)
    merchant = models.ForeignKey(
        "accounts.Merchant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=50, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    result = models.CharField(max_length=16, choices=Result.choices, default=Result.SUCCESS)
    details = models.JSONField(default=dict, blank=True)
    correlation_id = models.CharField(max_length=200, blank=True, db_index=True)
    origin_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        db_table = "audit_entry"
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_type}:{self.actor_id} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogImmutable("audit entries are append-only: an entry cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("audit entries are append-only: an entry cannot be deleted")


class AuditSeal(models.Model):
    """One link of the hash chain over the audit log: it seals the entries with ids in
    (previous seal's last_entry_id, last_entry_id]. hash = SHA-256(previous hash, the range,
    the count and each entry's digest in id order), so any altered, removed or inserted entry
    in a sealed range, or any tampered seal, breaks the chain (verify_audit_log).

    Append-only like the entries (same trigger); written only by audit_seal_pending."""

    first_entry_id = models.BigIntegerField()  # first id sealed (informational; the range is by last ids)
    last_entry_id = models.BigIntegerField(unique=True)
    entry_count = models.PositiveIntegerField()
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    sealed_at = models.DateTimeField(auto_now_add=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        db_table = "audit_seal"
        ordering = ["last_entry_id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(first_entry_id__lte=models.F("last_entry_id")), name="seal_range_ordered"),
        ]

    def __str__(self) -> str:
        return f"seal ≤{self.last_entry_id} {self.hash[:12]}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogImmutable("audit seals are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("audit seals are append-only")
