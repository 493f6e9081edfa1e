"""Executing a refund at the gateway (the `refunds.execute` task runs refund_execute).

Execution is request-then-confirm, like payment creation: the refund is marked processing
and committed, the gateway is called with no database transaction or row lock held, and the
outcome is recorded in a second short transaction (refunds.services.outcome). The gateway
call carries an idempotency key derived from the refund, so a crash in between, a
redelivered task or a retry after a timeout re-sends the same key and can never refund twice.

Each attempt first claims the refund (attempt token + `in_flight_until` lease, one
conditional UPDATE): a second run never calls the gateway while a claim is live, and an
expired claim is taken over with the same key (outcome unknown). An unknown-outcome refund
whose key the gateway may have forgotten (FLOWPAY_REFUND_KEY_RETENTION_SECONDS) is looked
up there before anything is re-sent, or left failed for manual reconciliation if it cannot be.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from gateways.base import GatewayError, GatewayUnavailableError, OperationResult
from gateways.breaker import breaker_for
from gateways.registry import gateway_named
from gateways.router import observed_call
from payments.models import Transaction
from refunds.models import OPEN_CHARGEBACK_STATES, Chargeback, Refund, RefundStatus
from refunds.services.outcome import record_failure, refund_record_outcome
from refunds.services.reservation import lock_refund

# At module level on purpose: refunds.tasks imports services inside its task bodies, so
# services can queue tasks at module level without an import cycle at load time.
from refunds.tasks import refund_execute_task

logger = logging.getLogger(__name__)

R = RefundStatus


def refund_queue_execution(refund: Refund) -> None:
    """Queue `refunds.execute` for the refund once the caller's transaction commits."""
    refund_id = refund.pk
    # robust: a broker hiccup must not turn a committed refund into a 500; the stalled-refund
    # sweeper (refunds.requeue_stalled) queues it again.
    transaction.on_commit(lambda: refund_execute_task.delay(refund_id), robust=True)


def refunds_requeue_stalled(*, older_than: dt.timedelta | None = None) -> int:
    """Queue again refunds that should be running but are not: pending ones whose task was
    lost (broker outage at commit time) and processing ones whose retry is long overdue
    (worker killed). Re-running is safe: same idempotency key, and a run that finds an
    attempt still in flight (a live claim) leaves it alone; one whose claim expired takes it
    over. Refunds with a live claim are not queued."""
    now = timezone.now()
    cutoff = now - (older_than or dt.timedelta(seconds=settings.FLOWPAY_REFUND_STALLED_AFTER_SECONDS))
    stalled = Refund.objects.filter(
        Q(status=R.PENDING, updated_at__lt=cutoff, refund_to_original_method=True)
        | Q(status=R.PROCESSING, next_retry_at__lt=cutoff)
        | Q(status=R.PROCESSING, next_retry_at__isnull=True, updated_at__lt=cutoff)
    ).exclude(in_flight_until__gt=now).values_list("pk", flat=True)
    count = 0
    for refund_id in stalled:
        refund_execute_task.delay(refund_id)
        count += 1
    return count


def refund_claim_seconds() -> float:
    """The lease of an attempt's claim: longer than any gateway call can take (the task's
    hard time limit is 60 s), so a live claim means a call may still be on its way; after
    it, the worker is gone and another run may take the refund over (same key)."""
    return settings.FLOWPAY_REFUND_CLAIM_SECONDS


def refund_key_retention_seconds() -> float:
    """How long the gateway remembers an idempotency key (Stripe: 24 hours)."""
    return settings.FLOWPAY_REFUND_KEY_RETENTION_SECONDS


def _key_may_be_forgotten(refund: Refund, now) -> bool:
    """True once re-sending the key might reach a gateway that forgot it (and so refund
    again): its first use is older than the retention, less one lease for the call itself."""
    if refund.key_sent_at is None:
        return False
    return (now - refund.key_sent_at).total_seconds() >= refund_key_retention_seconds() - refund_claim_seconds()


class RefundLookup(Protocol):
    """Optional gateway capability: the refund made under an idempotency key, found without
    re-sending it (None when the gateway made none). Implemented by the simulator and
    Stripe (refund metadata `flowpay_idempotency_key`); not by PayPal."""

    def find_refund(self, *, reference: str, idempotency_key: str) -> OperationResult | None: ...


def _refund_lookup(gateway_name: str) -> RefundLookup | None:
    try:
        gateway = gateway_named(gateway_name)
    except LookupError:
        return None
    return gateway if callable(getattr(gateway, "find_refund", None)) else None


@dataclass(frozen=True)
class _Attempt:
    """A claimed attempt: only the run holding `token` may call the gateway."""

    refund: Refund
    gateway_name: str
    charge_reference: str
    token: str
    idempotency_key: str
    look_up_first: bool


def refund_execute(*, refund_id: int, actor: Actor, final_attempt: bool = True) -> Refund:
    """Send a pending or processing refund to its payment's gateway and record the outcome.

    Safe to run any number of times, concurrently too: a refund that already succeeded or
    failed is left alone, a run that finds another attempt in flight (a live claim) does not
    call the gateway, and every call for the same refund carries the same idempotency key. On
    an error that may be retried (gateway unavailable, timeout) the refund stays `processing`
    with `next_retry_at` set, unless `final_attempt`, in which case it is left `failed` with
    the reason. A refusal by the gateway fails it at once (after an unknown outcome it keeps
    the reservation: the earlier call may have refunded)."""
    attempt = _refund_begin_attempt(refund_id=refund_id, actor=actor)
    if attempt is None:
        return Refund.objects.get(pk=refund_id)
    try:
        result: OperationResult | GatewayError
        authoritative = False
        try:
            found = _gateway_find_refund(attempt) if attempt.look_up_first else None
            if found is not None:
                result, authoritative = found, True
            else:
                result = _gateway_refund(gateway_name=attempt.gateway_name, reference=attempt.charge_reference,
                                         refund=attempt.refund)
        except GatewayError as exc:
            result = exc
        return refund_record_outcome(
            refund_id=refund_id, result=result, actor=actor, final_attempt=final_attempt, token=attempt.token,
            idempotency_key=attempt.idempotency_key, authoritative=authoritative,
        )
    except BaseException:
        _refund_abandon_claim(refund_id=refund_id, token=attempt.token)
        raise


def _gateway_find_refund(attempt: _Attempt) -> OperationResult | None:
    lookup = _refund_lookup(attempt.gateway_name)
    if lookup is None:  # checked when the attempt was claimed; the deployment changed since
        raise GatewayUnavailableError(f"the gateway {attempt.gateway_name!r} cannot look refunds up")
    found = lookup.find_refund(reference=attempt.charge_reference, idempotency_key=attempt.idempotency_key)
    logger.info("looked up an unknown-outcome refund at the gateway before re-sending its key",
                extra={"refund": attempt.refund.public_id, "gateway": attempt.gateway_name, "found": found is not None})
    return found


def _gateway_refund(*, gateway_name: str, reference: str, refund: Refund) -> OperationResult:
    # Imported here: the router is part of the gateway layer and pulls in its metrics.
    try:
        gateway = gateway_named(gateway_name)
    except LookupError:  # a gateway removed from this deployment: nothing can happen there
        raise GatewayUnavailableError(f"the gateway {gateway_name!r} is not available in this deployment") from None
    if not breaker_for(gateway_name).allow_request():
        raise GatewayUnavailableError(f"the {gateway_name} circuit breaker is open")
    return observed_call(
        gateway=gateway_name, operation="refund", flowpay_id=refund.public_id,
        call=lambda: gateway.refund(reference=reference, amount=refund.amount, idempotency_key=refund.idempotency_key),
    )


@transaction.atomic
def _refund_begin_attempt(*, refund_id: int, actor: Actor) -> _Attempt | None:
    """Claim the next gateway attempt, or None when this run must not call the gateway:
    finished, awaiting approval, off-gateway, another attempt in flight, or a key that may
    have been forgotten by a gateway that cannot look refunds up (then failed here)."""
    txn, refund = lock_refund(refund_id)
    now = timezone.now()
    if refund.status == R.PENDING:
        refund.start_processing(gateway=txn.gateway, now=now)
        audit_record(actor=actor, action=AuditAction.REFUND_PROCESSING, target=refund, details={"gateway": txn.gateway})
    elif refund.status != R.PROCESSING:
        return None  # already finished (a redelivered or duplicate task), or awaiting approval
    if not refund.refund_to_original_method:  # never queued, but never sent to a gateway either
        refund.save()
        return None
    if refund.in_flight_until is not None and refund.in_flight_until > now:
        logger.info("refund attempt already in flight: not calling the gateway again",
                    extra={"refund": refund.public_id, "in_flight_until": refund.in_flight_until.isoformat()})
        return None
    if refund.in_flight_until is not None:
        _take_over_expired_claim(txn=txn, refund=refund, actor=actor)
    if not refund.outcome_unknown and Chargeback.objects.filter(transaction=txn, status__in=OPEN_CHARGEBACK_STATES).exists():
        # A chargeback opened after the refund was queued: refunding now could return the
        # money twice (the network takes it back too). Nothing was sent under this key yet.
        record_failure(
            refund=refund, txn=txn, code="charge_disputed", now=now, actor=actor,
            message=f"Not sent: transaction {txn.public_id} has an open chargeback; refund after the dispute is closed.",
            details={"gateway": txn.gateway, "attempt": refund.attempts},
        )
        return None
    gateway_name = refund.gateway or txn.gateway
    look_up_first = refund.outcome_unknown and _key_may_be_forgotten(refund, now)
    if look_up_first and _refund_lookup(gateway_name) is None:
        _fail_forgotten_key(txn=txn, refund=refund, gateway_name=gateway_name, actor=actor, now=now)
        return None
    refund.save()
    token = uuid.uuid4().hex
    claimed = (
        Refund.objects.filter(pk=refund.pk, status=R.PROCESSING)
        .filter(Q(in_flight_until__isnull=True) | Q(in_flight_until__lte=now))
        .update(attempt_token=token, in_flight_until=now + dt.timedelta(seconds=refund_claim_seconds()),
                attempts=F("attempts") + 1, last_attempt_at=now, next_retry_at=None,
                key_sent_at=refund.key_sent_at or now, updated_at=now)
    )
    if not claimed:
        return None
    refund.refresh_from_db()
    return _Attempt(refund=refund, gateway_name=gateway_name, charge_reference=txn.gateway_reference, token=token,
                    idempotency_key=refund.idempotency_key, look_up_first=look_up_first)


def _take_over_expired_claim(*, txn: Transaction, refund: Refund, actor: Actor) -> None:
    # The holder outlived its lease (worker killed): it may have reached the gateway.
    refund.outcome_unknown = True
    logger.warning("refund attempt claim expired: taking over with the same key",
                   extra={"refund": refund.public_id, "transaction": txn.public_id})
    audit_record(actor=actor, action=AuditAction.REFUND_CLAIM_EXPIRED, target=refund, result="failure",
                 details={"attempt": refund.attempts, "in_flight_until": refund.in_flight_until.isoformat(),
                          "idempotency_key": refund.idempotency_key})
    refund.end_claim()


def _fail_forgotten_key(*, txn: Transaction, refund: Refund, gateway_name: str, actor: Actor, now) -> None:
    """An unknown outcome whose key the gateway may have forgotten, at a gateway that cannot
    look refunds up: re-sending could refund twice, so the refund is failed for a person."""
    message = (
        f"Not re-sent: the last call under idempotency key {refund.idempotency_key} (first sent "
        f"{refund.key_sent_at.isoformat()}) had an unknown outcome and the {gateway_name} gateway may have "
        "forgotten the key, so re-sending it could refund twice, and refunds cannot be looked up there. "
        "Check the refund at the gateway and reconcile manually."
    )
    details = {"gateway": gateway_name, "attempt": refund.attempts, "idempotency_key": refund.idempotency_key,
               "key_sent_at": refund.key_sent_at.isoformat()}
    logger.error("unknown-outcome refund not re-sent: its idempotency key may be forgotten; reconcile manually",
                 extra={"refund": refund.public_id, "transaction": txn.public_id, "gateway": gateway_name})
    record_failure(refund=refund, txn=txn, code="idempotency_key_expired", message=message, actor=actor,
                   details=details, now=now)


def _refund_abandon_claim(*, refund_id: int, token: str) -> None:
    """The run holding the claim crashed after claiming (maybe after the gateway refunded):
    give the claim up so a redelivered task need not wait for the lease, outcome unknown."""
    try:
        Refund.objects.filter(pk=refund_id, status=R.PROCESSING, attempt_token=token).update(
            attempt_token="", in_flight_until=None, outcome_unknown=True, updated_at=timezone.now()
        )
    except Exception:  # the database may be what failed; the lease expires on its own
        logger.exception("could not give up a refund attempt claim", extra={"refund_id": refund_id})
