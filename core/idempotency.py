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
- A creating endpoint may have its service claim the key in the database transaction that
  creates the object and store the answer in the one that records the outcome
  (IdempotencyClaim): the same rules with two fewer commits, since a crash leaves either
  nothing (the claim rolled back with the object) or the claim linked to what it made.
- Records are purged after FLOWPAY_IDEMPOTENCY_TTL (24 h) by a beat task.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ErrorCode, IdempotencyError, IdempotencyInFlight, InvalidRequest
from core.lookups import UniqueLookup
from core.models import IdempotencyRecord

MAX_KEY_LENGTH = 255
# Every request with a key reads its record first: its SQL is built once (core.lookups).
RECORD_BY_KEY = UniqueLookup(IdempotencyRecord, by=("scope", "key"))
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


def idempotency_lookup(*, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | Replay | None:
    """What the key says before this request runs: None when it is free, a Replay when its
    request completed (same parameters), the record when its request was presumed dead
    (in flight past the lock timeout) and this request takes it over; 422 for other
    parameters, 409 while its request still runs. One SELECT when the key is free or
    completed, so a replay reads one row and writes nothing."""
    record = RECORD_BY_KEY.get(scope, key)
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyError(
            "Keys for idempotent requests can only be used with the same parameters they were first used with. "
            "This key was used with other parameters or another endpoint.",
            param="Idempotency-Key",
        )
    if record.status == IdempotencyRecord.Status.COMPLETED:
        return Replay(status=record.response_status, body=record.response_body)
    now = timezone.now()
    taken_over = IdempotencyRecord.objects.filter(
        pk=record.pk, status=IdempotencyRecord.Status.IN_FLIGHT, locked_at__lt=now - settings.FLOWPAY_IDEMPOTENCY_LOCK_TIMEOUT
    ).update(locked_at=now)
    if taken_over:
        record.locked_at = now
        return record
    raise IdempotencyInFlight(
        "A request with this Idempotency-Key is still being processed. Retry after it completes.",
        param="Idempotency-Key",
    )


def idempotency_begin(*, scope: str, key: str, method: str, path: str, fingerprint: str) -> IdempotencyRecord | Replay:
    """Claim the key (returns the new record) or answer from the existing one (returns a
    Replay), raising 422/409 as Stripe does (idempotency_lookup). The claim is made in
    autocommit so that it is visible to every concurrent request at once."""
    found = idempotency_lookup(scope=scope, key=key, fingerprint=fingerprint)
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                scope=scope, key=key, fingerprint=fingerprint, method=method, path=path[:500], locked_at=timezone.now()
            )
    except IntegrityError:  # claimed by a concurrent request since the look-up: answer from its record
        return idempotency_begin(scope=scope, key=key, method=method, path=path, fingerprint=fingerprint)


class IdempotencyKeyTaken(Exception):
    """A concurrent request claimed the key between this request's look-up and its claim
    (IdempotencyClaim.claim): the database transaction that tried is rolled back, and the
    request is answered from the other one's record (replay, 409 or 422)."""


@dataclass(eq=False)
class IdempotencyClaim:
    """An Idempotency-Key that the creating service claims and answers inside its own
    database transactions, instead of in separate ones around it (`@idempotent(
    answered_by_service=…)`): the claim is the first statement of the transaction that
    creates the object (so a crash leaves either nothing or the claim with what it links),
    and the answer is stored in the transaction that records the outcome (so the outcome
    and its answer commit together, once).

    `record` is set from the start when this request takes over the record of one presumed
    dead (`record_id`: the service must look for what that one created), or once `claim`
    made it. `answer` is the endpoint's rendering of the outcome (an object with
    `status_code` and `data`, a DRF Response); `response` is that answer once stored by
    `complete`."""

    scope: str
    key: str
    method: str
    path: str
    fingerprint: str
    answer: Callable[..., Any]
    record: IdempotencyRecord | None = None
    response: Any = None

    def __post_init__(self):
        self._taken_over = self.record

    @property
    def record_id(self) -> int | None:
        """The record's id, None until this request claimed the key (nothing can have been
        made under it yet) unless it took the record over."""
        return self.record.pk if self.record is not None else None

    @property
    def answered(self) -> bool:
        return self.response is not None

    def claim(self) -> IdempotencyRecord:
        """Claim the key: the first statement of the caller's database transaction. A
        concurrent claim of the same key waits on the unique index until that transaction
        ends; the loser raises IdempotencyKeyTaken, which must leave the transaction."""
        if self.record is not None:
            return self.record
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("an idempotency claim must be made inside the creating database transaction")
        try:
            self.record = IdempotencyRecord.objects.create(
                scope=self.scope, key=self.key, fingerprint=self.fingerprint, method=self.method,
                path=self.path[:500], locked_at=timezone.now(),
            )
        except IntegrityError as exc:
            if _constraint_of(exc) != UNIQUE_KEY_CONSTRAINT:
                raise
            raise IdempotencyKeyTaken(self.key) from exc
        return self.record

    def rolled_back(self) -> None:
        """The database transaction that made the claim rolled back: the key is this
        request's to claim again (or, taken over, still the record it took over)."""
        self.record = self._taken_over

    def complete(self, *args, **kwargs) -> Any:
        """Render the answer (`answer(*args, **kwargs)`) and store it as the key's result,
        inside the caller's database transaction (the one that records the outcome).
        Returns the answer, which the endpoint sends."""
        if self.record is None:
            raise RuntimeError("complete() before claim(): nothing to store the answer in")
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("an idempotency answer must be stored inside the outcome's database transaction")
        response = self.answer(*args, **kwargs)
        IdempotencyRecord.objects.filter(pk=self.record.pk).update(
            status=IdempotencyRecord.Status.COMPLETED, response_status=response.status_code,
            response_body=response.data, completed_at=timezone.now(),
        )
        self.response = response
        return response


UNIQUE_KEY_CONSTRAINT = "idempotency_unique_key_per_scope"


def _constraint_of(exc: IntegrityError) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


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
