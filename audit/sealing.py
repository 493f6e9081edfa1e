"""Sealing the audit log into a keyed hash chain, and anchoring the chain outside the database.

Rules:
- Entries are sealed in id order, in batches, by one sealer at a time (a PostgreSQL advisory
  lock; SQLite serialises writers anyway). Inserts never wait for sealing.
- A sealed range must never gain an entry later, yet ids are drawn at INSERT and an entry
  becomes visible only when its transaction commits, possibly after a higher id. So the
  sealer seals only up to an id below which every id is final (committed, or never will be):
  * PostgreSQL: an INSERT takes a RowExclusiveLock on audit_entry before it draws its id and
    holds it until its transaction ends. The sealer reads the highest committed id, then the
    transactions holding that lock (pg_locks). Every id at or below it that is not committed
    yet belongs to one of those transactions: once they have all ended, it is final. With
    none, it is final at once; otherwise the observation is kept (in the cache) and a later
    run, seconds later, seals up to it when its transactions are gone.
  * SQLite: one writer at a time, and a transaction's ids are committed (or rolled back and
    reused) before any other writer draws one: the highest committed id is final.
  FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS (0 by default) can hold entries back longer.
- Seal n covers the ids in (seal n-1's last id, seal n's last id]. Its hash is an HMAC
  (audit.chain) over the previous hash, that range, the number of entries and every entry's
  digest, so altering, removing or inserting an entry in a sealed range, or editing a seal,
  is detected, and no one without the key can recompute the chain.
- Anchors: after each seal commits, the sealer writes a signed checkpoint to the log
  (logger flowpay.audit.anchor: seal id, last entry id, entry count, hash, key id, signature)
  and sets the Prometheus gauges audit_chain_last_seal_id and
  audit_chain_last_sealed_entry_id. Both live outside the database: `verify_audit_log
  --anchor` checks the chain against the last anchor, so truncating the newest entries with
  their seals, or rewriting the chain, is detected.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import GENESIS, active_key_id, anchor_signature, entry_digest, seal_hash
from audit.models import AuditEntry, AuditSeal
from audit.verification import VerificationReport, audit_verify
from core.observability.metrics import (
    audit_chain_last_seal_id,
    audit_chain_last_seal_timestamp,
    audit_chain_last_sealed_entry_id,
)

__all__ = ["GENESIS", "VerificationReport", "audit_seal_pending", "audit_verify", "entry_digest",
           "final_entry_bound", "seal_hash"]

anchor_logger = logging.getLogger("flowpay.audit.anchor")

_LOCK_KEY = 0x46_50_41_55  # "FPAU": one sealer at a time
OBSERVATIONS_CACHE_KEY = "audit:seal:observations"
MAX_OBSERVATIONS = 20

# Transactions (other than ours) that hold a lock allowing INSERT on audit_entry.
_WRITERS_SQL = """
SELECT DISTINCT virtualtransaction FROM pg_locks
WHERE locktype = 'relation'
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND relation = 'audit_entry'::regclass
  AND mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
  AND pid IS DISTINCT FROM pg_backend_pid()
"""


def _lock_sealer() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _load_observations() -> list[dict]:
    try:
        return list(cache.get(OBSERVATIONS_CACHE_KEY) or [])
    except Exception:  # the cache away only delays sealing
        return []


def _store_observations(observations: list[dict]) -> None:
    try:
        cache.set(OBSERVATIONS_CACHE_KEY, observations[-MAX_OBSERVATIONS:], timeout=3600)
    except Exception:
        pass


@transaction.atomic
def final_entry_bound() -> int:
    """The highest id such that every entry id at or below it is final (see the rules)."""
    _lock_sealer()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM audit_entry")
        highest = cursor.fetchone()[0]
        if connection.vendor != "postgresql":
            return highest
        # Read after the highest id: a transaction still uncommitted then is listed now.
        cursor.execute(_WRITERS_SQL)
        writers = {row[0] for row in cursor.fetchall()}
    bound = 0 if writers else highest
    pending = []
    for observation in _load_observations():
        if writers.isdisjoint(observation["writers"]):
            bound = max(bound, observation["highest"])
        else:
            pending.append(observation)
    if writers:
        pending.append({"highest": highest, "writers": sorted(writers)})
    _store_observations([o for o in pending if o["highest"] > bound])
    return bound


def audit_seal_pending(*, batch_size: int = 5000, max_batches: int = 20) -> int:
    """Seal the entries whose ids are final (and old enough); returns the number sealed."""
    bound = final_entry_bound()
    sealed = 0
    for _ in range(max_batches):
        count = _seal_one_batch(batch_size=batch_size, bound=bound)
        sealed += count
        if count < batch_size:
            break
    return sealed


@transaction.atomic
def _seal_one_batch(*, batch_size: int, bound: int) -> int:
    _lock_sealer()
    last = AuditSeal.objects.order_by("-last_entry_id").first()
    after_id, previous_hash = (last.last_entry_id, last.hash) if last else (0, GENESIS)
    cutoff = timezone.now() - dt.timedelta(seconds=settings.FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS)
    # Stop at the first entry that is too young: the sealed range must have no holes.
    candidates = list(AuditEntry.objects.filter(pk__gt=after_id, pk__lte=bound).order_by("pk")[:batch_size])
    entries = []
    for entry in candidates:
        if entry.occurred_at >= cutoff:
            break
        entries.append(entry)
    if not entries:
        return 0
    last_id, key_id = entries[-1].pk, active_key_id()
    seal = AuditSeal.objects.create(
        first_entry_id=entries[0].pk, last_entry_id=last_id, entry_count=len(entries), previous_hash=previous_hash,
        key_id=key_id,
        hash=seal_hash(previous_hash=previous_hash, after_id=after_id, last_id=last_id,
                       digests=[entry_digest(e) for e in entries], key_id=key_id),
    )
    # Only a committed seal is anchored: an anchor must never name a seal that does not exist.
    transaction.on_commit(lambda: publish_anchor(seal))
    return len(entries)


def seal_anchor(seal: AuditSeal) -> dict:
    """The signed checkpoint of a seal, as the anchor log line carries it."""
    anchor = {"sealId": seal.pk, "lastEntryId": seal.last_entry_id, "entryCount": seal.entry_count,
              "hash": seal.hash, "keyId": seal.key_id}
    return {**anchor, "signature": anchor_signature(anchor)}


def publish_anchor(seal: AuditSeal) -> None:
    """Write the seal's anchor outside the database: one JSON log line and the gauges."""
    anchor_logger.info("audit chain anchor", extra={"anchor": seal_anchor(seal)})
    audit_chain_last_seal_id.set(seal.pk)
    audit_chain_last_sealed_entry_id.set(seal.last_entry_id)
    audit_chain_last_seal_timestamp.set(seal.sealed_at.timestamp())
