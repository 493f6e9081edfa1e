"""The immutable audit log.

Rule: an entry is written once, in the same database transaction as the action it
records, and never changed or removed. The model and its QuerySet refuse updates and
deletes; a PostgreSQL (and SQLite) trigger rejects UPDATE, DELETE and TRUNCATE from any
client, raw SQL included (migration 0002).

Each entry is signed as it is inserted (save() and bulk_create() alike, see audit.chain):
a MAC keyed with a secret the database does not hold, over its content, its time and a
random nonce, with the id of the key. Entries written before signing existed have no key
id ("legacy, unkeyed"); the seals of the hash chain (audit.sealing) bind them.
"""

from django.db import models
from django.utils import timezone

from audit.chain import entry_sign


class AuditLogImmutable(Exception):
    """Raised on any attempt to change or remove an audit entry."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogImmutable("audit entries are append-only: update() is refused")

    def delete(self):
        raise AuditLogImmutable("audit entries are append-only: delete() is refused")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogImmutable("audit entries are append-only: bulk_update() is refused")

    def update_or_create(self, *args, **kwargs):
        raise AuditLogImmutable("audit entries are append-only: update_or_create() is refused")


class AuditEntryQuerySet(AppendOnlyQuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        # One INSERT for many entries skips save(): each is signed here instead.
        objs = list(objs)
        for entry in objs:
            if entry.mac is None:
                entry_sign(entry)
        return super().bulk_create(objs, *args, **kwargs)


class AuditEntry(models.Model):
    class Result(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        DENIED = "denied"

    # Set when the entry is built, not by the INSERT: the MAC covers it.
    occurred_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
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
    # The signature (audit.chain.entry_sign); all three are NULL on legacy, unkeyed entries.
    key_id = models.CharField(max_length=64, null=True, blank=True, editable=False)
    nonce = models.UUIDField(null=True, blank=True, editable=False)
    mac = models.CharField(max_length=64, null=True, blank=True, editable=False)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        db_table = "audit_entry"
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_type", "object_id"])]
        constraints = [
            # A replayed (copied) entry keeps its nonce: refused here, reported by verify_audit_log.
            models.UniqueConstraint(fields=["nonce"], condition=models.Q(nonce__isnull=False), name="audit_entry_nonce_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_type}:{self.actor_id} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogImmutable("audit entries are append-only: an entry cannot be changed")
        if self.mac is None:
            entry_sign(self)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("audit entries are append-only: an entry cannot be deleted")


class AuditSeal(models.Model):
    """One link of the hash chain over the audit log: it seals the entries with ids in
    (previous seal's last_entry_id, last_entry_id]. hash = HMAC-SHA256 with the key key_id
    over the previous hash, the range, the count and each entry's digest in id order, so any
    altered, removed or inserted entry in a sealed range, or any tampered seal, breaks the
    chain (verify_audit_log), and the chain cannot be recomputed without the key. Seals
    from before keys existed (key_id NULL) are plain SHA-256 ("legacy, unkeyed").

    Append-only like the entries (same trigger); written only by audit_seal_pending."""

    first_entry_id = models.BigIntegerField()  # first id sealed (informational; the range is by last ids)
    last_entry_id = models.BigIntegerField(unique=True)
    entry_count = models.PositiveIntegerField()
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=64, null=True, blank=True)
    sealed_at = models.DateTimeField(auto_now_add=True)

    objects = AppendOnlyQuerySet.as_manager()

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
