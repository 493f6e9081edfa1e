"""Sealing the audit log into a hash chain, and verifying it.

Rules:
- Entries are sealed in id order, in batches, by one sealer at a time (a PostgreSQL advisory
  lock; SQLite serialises writers anyway). Inserts never wait for sealing.
- Only entries older than FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS (300) are sealed, so an entry
  whose transaction commits late (ids are taken at insert, not at commit) is not skipped:
  no database transaction here lasts that long.
- Seal n covers the ids in (seal n-1's last id, seal n's last id]. Its hash covers the
  previous hash, that range, the number of entries and every entry's digest, so altering,
  removing or inserting an entry in a sealed range, or editing a seal, is detected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEntry, AuditSeal

GENESIS = "0" * 64
_LOCK_KEY = 0x46_50_41_55  # "FPAU": one sealer at a time


def entry_digest(entry: AuditEntry) -> str:
    document = {
        "id": entry.pk,
        "occurred_at": entry.occurred_at.astimezone(dt.UTC).isoformat(),
        "actor_type": entry.actor_type,
        "actor_id": entry.actor_id,
        "merchant_id": entry.merchant_id,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "result": entry.result,
        "details": entry.details,
        "correlation_id": entry.correlation_id,
        "origin_ip": entry.origin_ip,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def seal_hash(*, previous_hash: str, after_id: int, last_id: int, digests: list[str]) -> str:
    chain = hashlib.sha256()
    chain.update(f"{previous_hash}|{after_id}|{last_id}|{len(digests)}|".encode())
    for digest in digests:
        chain.update(digest.encode())
    return chain.hexdigest()


def _entries_in(after_id: int, last_id: int):
    return AuditEntry.objects.filter(pk__gt=after_id, pk__lte=last_id).order_by("pk").iterator(chunk_size=2000)


def audit_seal_pending(*, batch_size: int = 5000, max_batches: int = 20) -> int:
    """Seal what is old enough; returns the number of entries sealed."""
    sealed = 0
    for _ in range(max_batches):
        count = _seal_one_batch(batch_size=batch_size)
        sealed += count
        if count < batch_size:
            break
    return sealed


@transaction.atomic
def _seal_one_batch(*, batch_size: int) -> int:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    last = AuditSeal.objects.order_by("-last_entry_id").first()
    after_id, previous_hash = (last.last_entry_id, last.hash) if last else (0, GENESIS)
    min_age = dt.timedelta(seconds=settings.FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS)
    cutoff = timezone.now() - min_age
    # Stop at the first entry that is too young: the sealed range must have no holes.
    candidates = list(AuditEntry.objects.filter(pk__gt=after_id).order_by("pk")[:batch_size])
    entries = []
    for entry in candidates:
        if entry.occurred_at >= cutoff:
            break
        entries.append(entry)
    if not entries:
        return 0
    last_id = entries[-1].pk
    AuditSeal.objects.create(
        first_entry_id=entries[0].pk, last_entry_id=last_id, entry_count=len(entries), previous_hash=previous_hash,
        hash=seal_hash(previous_hash=previous_hash, after_id=after_id, last_id=last_id,
                       digests=[entry_digest(e) for e in entries]),
    )
    return len(entries)


@dataclass
class VerificationReport:
    seals_checked: int = 0
    entries_verified: int = 0
    entries_unsealed: int = 0
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_verify() -> VerificationReport:
    """Recompute the chain from the first seal; report every seal whose entries or link do
    not match (altered, removed or inserted entries; edited or missing seals)."""
    report = VerificationReport()
    previous_hash, after_id = GENESIS, 0
    for seal in AuditSeal.objects.order_by("last_entry_id").iterator():
        report.seals_checked += 1
        if seal.previous_hash != previous_hash:
            report.problems.append({"seal": seal.pk, "lastEntryId": seal.last_entry_id,
                                    "problem": "chain broken: the seal does not follow the previous one (a seal was edited or removed)"})
        digests, ids = [], []
        for entry in _entries_in(after_id, seal.last_entry_id):
            digests.append(entry_digest(entry))
            ids.append(entry.pk)
        expected = seal_hash(previous_hash=seal.previous_hash, after_id=after_id, last_id=seal.last_entry_id, digests=digests)
        if len(ids) != seal.entry_count:
            kind = "removed" if len(ids) < seal.entry_count else "inserted"
            report.problems.append({"seal": seal.pk, "lastEntryId": seal.last_entry_id,
                                    "problem": f"entries {kind}: {seal.entry_count} sealed, {len(ids)} present in ids {after_id + 1}..{seal.last_entry_id}"})
        elif expected != seal.hash:
            report.problems.append({"seal": seal.pk, "lastEntryId": seal.last_entry_id,
                                    "problem": f"entries altered in ids {after_id + 1}..{seal.last_entry_id}"})
        report.entries_verified += len(ids)
        previous_hash, after_id = seal.hash, seal.last_entry_id
    report.entries_unsealed = AuditEntry.objects.filter(pk__gt=after_id).count()
    return report
