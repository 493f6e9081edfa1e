"""Idempotency-Key handling with Stripe's semantics.

- The first request with a key inserts an in-flight record (the unique constraint on
  (scope, key) decides the winner under any concurrency) and runs.
- The same key with the same parameters gets the stored status and body replayed.
- The same key with other parameters gets 422 `idempotency_error`.
- The same key while the first request still runs gets 409.
- Results are stored only when the endpoint executed: validation, authentication and
  not-found errors release the key so a corrected retry can run. A server error (a crash, a
  database fault) leaves the record in flight, since the request may have charged before it
  failed: retries answer 409 until the lock timeout, then one takes it over;
  every creating service links what it creates to the record (an `idempotency_record`
  field, see `idempotency_created`) and a take-over finds it, so it never creates or
  charges twice.
- Records are purged after FLOWPAY_IDEMPOTENCY_TTL (24 h) by a beat task.
"""

import hashlib
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ErrorCode, IdempotencyError, IdempotencyInFlight, InvalidRequest
from core.models import IdempotencyRecord

MAX_KEY_LENGTH = 255
# Responses that mean "the endpoint did not execute": the key is released, not stored.
NOT_EXECUTED_STATUSES = frozenset({400, 401, 403, 404, 405, 406, 415, 422, 429})


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict | list | None


def request_fingerprint(*, method: str, path: str, data: object) -> str:
    canonical = json.dumps({"method": method, "path": path, "data": data}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def idempotency_key_validate(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or key.strip() != key:
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters without surrounding spaces.",
            code=ErrorCode.IDEMPOTENCY_KEY_INVALID, param="Idempotency-Key",
        )
    return key


def idempotency_begin(*, scope: str, key: str, method: str, path: str, fingerprint: str) -> IdempotencyRecord | Replay:
    """Claim the key (returns the new record) or answer from the existing one (returns a
    Replay), raising 422/409 as Stripe does. Runs in autocommit so that the claim is
    visible to every concurrent request at once."""
    now = timezone.now()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                scope=scope, key=key, fingerprint=fingerprint, method=method, path=path[:500], locked_at=now
            )
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
    if record is None:  # released between our insert and read: claim it again
        return idempotency_begin(scope=scope, key=key, method=method, path=path, fingerprint=fingerprint)
    if record.fingerprint != fingerprint:
        raise IdempotencyError(
            "Keys for idempotent requests can only be used with the same parameters they were first used with. "
            "This key was used with other parameters or another endpoint.",
            param="Idempotency-Key",
        )
    if record.status == IdempotencyRecord.Status.COMPLETED:
        return Replay(status=record.response_status, body=record.response_body)
    stale_before = now - settings.FLOWPAY_IDEMPOTENCY_LOCK_TIMEOUT
    taken_over = IdempotencyRecord.objects.filter(
        pk=record.pk, status=IdempotencyRecord.Status.IN_FLIGHT, locked_at__lt=stale_before
    ).update(locked_at=now)
    if taken_over:
        record.locked_at = now
        return record
    raise IdempotencyInFlight(
        "A request with this Idempotency-Key is still being processed. Retry after it completes.",
        param="Idempotency-Key",
    )


def idempotency_finish(*, record: IdempotencyRecord, status: int, body: object) -> None:
    """Store the result, or release the key when the endpoint provably did nothing. A server
    error never releases it: the request may have reached the gateway before it failed."""
    if status >= 500:
        return
    if status in NOT_EXECUTED_STATUSES:
        IdempotencyRecord.objects.filter(pk=record.pk, status=IdempotencyRecord.Status.IN_FLIGHT).delete()
        return
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=IdempotencyRecord.Status.COMPLETED, response_status=status, response_body=body, completed_at=timezone.now()
    )


def idempotency_created(model, *, record_id: int | None):
    """The object of `model` (which has an `idempotency_record` link) already created under
    this record, or None: what a creating service returns instead of creating again when a
    crashed request is taken over."""
    if record_id is None:
        return None
    return model.objects.filter(idempotency_record_id=record_id).first()


def idempotency_records_purge(*, older_than=None) -> int:
    """Delete records older than the TTL (24 h by default). Returns how many were removed."""
    cutoff = timezone.now() - (older_than or settings.FLOWPAY_IDEMPOTENCY_TTL)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
