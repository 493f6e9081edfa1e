"""Refund services: create, approve/reject (four-eyes), execute at the gateway, retry.

The invariant — succeeded + in-flight + awaiting-approval refunds never exceed the captured
amount — lives in the database: every refund reserves its amount on the transaction with one
conditional UPDATE (`amount_refund_reserved + amount + amount_disputed <= amount_captured`)
and CHECK constraints bound the reservation by the captured amount. A failed or rejected
refund gives its reservation back; a succeeded one moves its amount into amount_refunded.

Execution is request-then-confirm, like payment creation: the refund is marked processing
and committed, the gateway is called with no database transaction or row lock held, and the
outcome is recorded in a second short transaction. The gateway call carries an idempotency
key derived from the refund, so a crash in between, a redelivered task or a retry after a
timeout re-sends the same key and can never refund twice.

Each attempt first claims the refund (attempt token + `in_flight_until` lease, one
conditional UPDATE): a second run never calls the gateway while a claim is live, an expired
claim is taken over with the same key (outcome unknown), and only the claim's holder (or the
gateway's own report: webhook, lookup) records errors and refusals. A success is recorded
whoever reports it, recovering a refund already failed. An unknown-outcome refund whose key
the gateway may have forgotten (FLOWPAY_REFUND_KEY_RETENTION_SECONDS) is looked up there
before anything is re-sent, or left failed for manual reconciliation if it cannot be.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import can_proceed

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.errors import AmountTooLarge, ErrorCode, InvalidRequest, InvalidState, NotFound, PermissionDenied
from core.money import format_minor_units
from core.observability.metrics import refund_processing_latency
from core.permissions import Capability, roles_can
from gateways.base import (
    GatewayError,
    GatewayRequestError,
    GatewayTimeout,
    GatewayUnavailableError,
    OperationResult,
)
from payments.models import Transaction, TransactionStatus
from payments.models.transactions import CAPTURED_STATES
from refunds.models import OPEN_CHARGEBACK_STATES, Chargeback, Refund, RefundStatus
from refunds.services.events import refund_announce

logger = logging.getLogger(__name__)

R = RefundStatus
REASON_MAX_LENGTH = 500


# --- policy helpers ------------------------------------------------------------------
def support_refund_limit() -> int:
    return settings.FLOWPAY_SUPPORT_REFUND_LIMIT


def refund_needs_approval(*, actor: Actor, amount: int) -> bool:
    """Four-eyes rule: a staff refund above FLOWPAY_SUPPORT_REFUND_LIMIT (minor units of the
    transaction's currency) waits for an approval unless the requester may approve refunds
    (refund.approve). Merchants refunding their own payments are not limited."""
    if actor.type != ActorType.STAFF:
        return False
    return not roles_can(actor.roles, Capability.REFUND_APPROVE) and amount > support_refund_limit()


def _check_may_refund(actor: Actor, txn: Transaction, capability: Capability) -> None:
    if actor.type == ActorType.STAFF and not roles_can(actor.roles, capability):
        raise PermissionDenied("Refunds need the support, finance or admin role.")
    if actor.type == ActorType.API and actor.merchant_id != txn.merchant_id:
        raise NotFound(f"No such transaction: '{txn.public_id}'", param="id")


def _check_approver(actor: Actor, refund: Refund) -> None:
    if actor.type != ActorType.STAFF or not roles_can(actor.roles, Capability.REFUND_APPROVE):
        raise PermissionDenied("Approving or rejecting a refund needs the finance or admin role.")
    if refund.requested_by_user_id is not None and refund.requested_by_user_id == actor.user_id:
        raise PermissionDenied("Four-eyes rule: a refund must be approved by someone other than its requester.")


def _validate_reason(reason: str, actor: Actor) -> str:
    if not isinstance(reason, str) or len(reason) > REASON_MAX_LENGTH or "\x00" in reason:
        raise InvalidRequest(f"The reason must be text of at most {REASON_MAX_LENGTH} characters.", param="reason")
    if actor.type == ActorType.STAFF and not reason.strip():
        raise InvalidRequest("A reason is required for refunds issued by staff.", code=ErrorCode.PARAMETER_MISSING, param="reason")
    return reason  # stored verbatim: never trimmed, never sanitised (it is escaped on output)


def _check_no_open_dispute(txn: Transaction) -> None:
    if Chargeback.objects.filter(transaction=txn, status__in=OPEN_CHARGEBACK_STATES).exists():
        raise InvalidState(
            f"Transaction {txn.public_id} has an open chargeback: it cannot be refunded until the dispute is closed "
            "(refunding now could return the money twice).",
            code=ErrorCode.CHARGE_DISPUTED,
        )


def _too_large(txn: Transaction, amount: int) -> AmountTooLarge:
    remaining = txn.amount_refundable
    return AmountTooLarge(
        f"Refund amount {amount} exceeds the amount still refundable on {txn.public_id}: {remaining} "
        f"({format_minor_units(remaining, txn.currency)}).",
        param="amount",
    )


def _lock(refund_id: int) -> tuple[Transaction, Refund]:
    """Lock the transaction, then the refund: the same order everywhere, so two services
    never wait on each other in a cycle."""
    transaction_id = Refund.objects.filter(pk=refund_id).values_list("transaction_id", flat=True).first()
    if transaction_id is None:
        raise NotFound(f"No such refund: {refund_id}")
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    return txn, refund


# --- the reservation (the database-enforced invariant) ------------------------------------
def _reserve(*, transaction_id: int, amount: int) -> bool:
    """Add `amount` to the transaction's refund reservation if, and only if, succeeded +
    in-flight refunds + withdrawn chargeback funds stay within the captured amount. One
    conditional UPDATE: correct under any concurrency, whoever else writes the row."""
    return bool(
        Transaction.objects.filter(pk=transaction_id, status__in=CAPTURED_STATES)
        .filter(amount_refund_reserved__lte=F("amount_captured") - F("amount_disputed") - amount)
        .update(amount_refund_reserved=F("amount_refund_reserved") + amount, updated_at=timezone.now())
    )


def _release(*, transaction_id: int, amount: int) -> None:
    Transaction.objects.filter(pk=transaction_id).update(
        amount_refund_reserved=F("amount_refund_reserved") - amount, updated_at=timezone.now()
    )


def _queue_execution(refund: Refund) -> None:
    from refunds.tasks import refund_execute_task

    refund_id = refund.pk
    # robust: a broker hiccup must not turn a committed refund into a 500; the stalled-refund
    # sweeper (refunds.requeue_stalled) queues it again.
    transaction.on_commit(lambda: refund_execute_task.delay(refund_id), robust=True)


# --- create / approve / reject -------------------------------------------------------
def refund_create(
    *,
    transaction_id: int,
    amount: int | None,
    reason: str,
    actor: Actor,
    refund_to_original_method: bool = True,
    idempotency_record_id: int | None = None,
) -> Refund:
    """Refund (part of) a captured payment. `amount=None` refunds what remains. Returns the
    refund: `pending` (queued for the gateway), `requires_approval` (four-eyes), or
    `succeeded` for an off-gateway credit."""
    if idempotency_record_id is not None:
        # A request re-run under the same Idempotency-Key after a crash: never refund again.
        existing = Refund.objects.filter(idempotency_record_id=idempotency_record_id).first()
        if existing is not None:
            return existing
    return _refund_open(
        transaction_id=transaction_id, amount=amount, reason=reason, actor=actor,
        refund_to_original_method=refund_to_original_method, idempotency_record_id=idempotency_record_id,
    )


@transaction.atomic
def _refund_open(
    *, transaction_id: int, amount: int | None, reason: str, actor: Actor, refund_to_original_method: bool,
    idempotency_record_id: int | None,
) -> Refund:
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    _check_may_refund(actor, txn, Capability.REFUND_CREATE)
    reason = _validate_reason(reason, actor)
    if txn.status not in CAPTURED_STATES:
        raise InvalidState(
            f"Cannot refund a {txn.status} transaction: only completed or partially refunded payments can be refunded."
        )
    _check_no_open_dispute(txn)
    if amount is None:
        amount = txn.amount_refundable
        if amount <= 0:
            raise AmountTooLarge(f"Nothing is left to refund on {txn.public_id}: the refundable amount is 0.", param="amount")
    if amount <= 0:
        raise InvalidRequest("Amount must be at least 1.", code=ErrorCode.AMOUNT_TOO_SMALL, param="amount")
    if not _reserve(transaction_id=txn.pk, amount=amount):
        raise _too_large(txn, amount)

    needs_approval = refund_needs_approval(actor=actor, amount=amount)
    refund = Refund(
        transaction=txn, merchant_id=txn.merchant_id, amount=amount, currency=txn.currency, reason=reason,
        refund_to_original_method=refund_to_original_method,
        status=R.REQUIRES_APPROVAL if needs_approval else R.PENDING,
        approval_required=needs_approval,
        initiated_by_type=str(actor.type), initiated_by_id=actor.id[:150],
        requested_by_user_id=actor.user_id if actor.type == ActorType.STAFF else None,
        idempotency_record_id=idempotency_record_id,
    )
    refund.save()
    audit_record(
        actor=actor, action=AuditAction.REFUND_CREATE, target=refund,
        details={
            "transaction": txn.public_id, "amount": amount, "currency": txn.currency, "reason": reason,
            "refund_to_original_method": refund_to_original_method, "approval_required": needs_approval,
            "limit": support_refund_limit() if needs_approval else None,
        },
    )
    if refund.status == R.PENDING:
        _dispatch(refund=refund, txn=txn, actor=actor)
    return refund


def _dispatch(*, refund: Refund, txn: Transaction, actor: Actor) -> None:
    """A refund ready to run: off-gateway credits are recorded at once; the others go to the
    gateway through the `refunds.execute` task once this transaction commits."""
    if refund.refund_to_original_method:
        _queue_execution(refund)
        return
    now = timezone.now()
    refund.start_processing(gateway="", now=now)
    refund.mark_succeeded(reference="", now=now)
    refund.save()
    _apply_to_transaction(txn=txn, refund=refund, actor=actor)
    audit_record(
        actor=actor, action=AuditAction.REFUND_SUCCEEDED, target=refund,
        details={"amount": refund.amount, "settlement": "off_gateway_credit", "note": "to be settled manually"},
    )
    refund_announce(refund)


def _apply_to_transaction(*, txn: Transaction, refund: Refund, actor: Actor) -> None:
    # The row is locked by the caller and amount_refund_reserved already covers this refund;
    # only amount_refunded and the status are written.
    txn.apply_refund(amount=refund.amount)
    txn.save(update_fields=["amount_refunded", "status", "updated_at"])
    refunded = txn.status == TransactionStatus.REFUNDED  # else partially refunded (apply_refund's only targets)
    audit_record(
        actor=actor, action=AuditAction.TRANSACTION_REFUNDED if refunded else AuditAction.TRANSACTION_PARTIALLY_REFUNDED, target=txn,
        details={"refund": refund.public_id, "amount": refund.amount, "amount_refunded": txn.amount_refunded},
    )


@transaction.atomic
def refund_approve(*, refund_id: int, actor: Actor) -> Refund:
    """Four-eyes: a finance or admin user other than the requester releases the refund."""
    txn, refund = _lock(refund_id)
    _check_approver(actor, refund)
    if not can_proceed(refund.approve):
        raise InvalidState(f"Cannot approve a {refund.status} refund: only refunds awaiting approval can be approved.")
    _check_no_open_dispute(txn)
    refund.approve(user=get_user_model().objects.get(pk=actor.user_id), now=timezone.now())
    refund.save()
    audit_record(
        actor=actor, action=AuditAction.REFUND_APPROVE, target=refund,
        details={"amount": refund.amount, "requested_by": refund.initiated_by_id},
    )
    _dispatch(refund=refund, txn=txn, actor=actor)
    return refund


@transaction.atomic
def refund_reject(*, refund_id: int, actor: Actor, reason: str = "") -> Refund:
    txn, refund = _lock(refund_id)
    _check_approver(actor, refund)
    if not can_proceed(refund.reject):
        raise InvalidState(f"Cannot reject a {refund.status} refund: only refunds awaiting approval can be rejected.")
    refund.reject(user=get_user_model().objects.get(pk=actor.user_id), reason=reason or "", now=timezone.now())
    refund.save()
    _release(transaction_id=txn.pk, amount=refund.amount)
    audit_record(actor=actor, action=AuditAction.REFUND_REJECT, target=refund, details={"amount": refund.amount, "reason": reason})
    return refund


# --- execution at the gateway -----------------------------------------------------------
def refund_retry_delay(attempt: int) -> float:
    """Seconds before the next automatic attempt: exponential backoff with jitter."""
    base = settings.FLOWPAY_REFUND_RETRY_BASE_SECONDS
    cap = settings.FLOWPAY_REFUND_RETRY_CAP_SECONDS
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def refund_claim_seconds() -> float:
    """The lease of an attempt's claim: longer than any gateway call can take (the task's
    hard time limit is 120 s), so a live claim means a call may still be on its way; after
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


# Refusals that, after a call whose outcome was unknown, say the money already went out.
ALREADY_REFUNDED_CODES = frozenset({"charge_already_refunded"})
# Refusals that say nothing about whether this key refunded (a concurrent same-key request).
UNKNOWN_OUTCOME_CODES = frozenset({"idempotency_error"})


class RefundLookup(Protocol):
    """Optional gateway capability: the refund made under an idempotency key, found without
    re-sending it (None when the gateway made none). Implemented by the simulator and
    Stripe (refund metadata `flowpay_idempotency_key`); not by PayPal."""

    def find_refund(self, *, reference: str, idempotency_key: str) -> OperationResult | None: ...


def _refund_lookup(gateway_name: str) -> RefundLookup | None:
    from gateways.registry import gateway_named

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
        return _refund_record_outcome(
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
    from gateways.breaker import breaker_for
    from gateways.registry import gateway_named
    from gateways.router import observed_call

    try:
        gateway = gateway_named(gateway_name)
    except LookupError:  # a gateway removed from this deployment: nothing can happen there
        raise GatewayUnavailableError(f"the gateway {gateway_name!r} is not available in this deployment") from None
    if not breaker_for(gateway_name).allow_request():
        raise GatewayUnavailableError(f"the {gateway_name} circuit breaker is open")
    return observed_call(
        gateway=gateway_name, operation="refund",
        call=lambda: gateway.refund(reference=reference, amount=refund.amount, idempotency_key=refund.idempotency_key),
    )


@transaction.atomic
def _refund_begin_attempt(*, refund_id: int, actor: Actor) -> _Attempt | None:
    """Claim the next gateway attempt, or None when this run must not call the gateway:
    finished, awaiting approval, off-gateway, another attempt in flight, or a key that may
    have been forgotten by a gateway that cannot look refunds up (then failed here)."""
    txn, refund = _lock(refund_id)
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
        # The holder outlived its lease (worker killed): it may have reached the gateway.
        refund.outcome_unknown = True
        logger.warning("refund attempt claim expired: taking over with the same key",
                       extra={"refund": refund.public_id, "transaction": txn.public_id})
        audit_record(actor=actor, action=AuditAction.REFUND_CLAIM_EXPIRED, target=refund, result="failure",
                     details={"attempt": refund.attempts, "in_flight_until": refund.in_flight_until.isoformat(),
                              "idempotency_key": refund.idempotency_key})
        refund.end_claim()
    if not refund.outcome_unknown and Chargeback.objects.filter(transaction=txn, status__in=OPEN_CHARGEBACK_STATES).exists():
        # A chargeback opened after the refund was queued: refunding now could return the
        # money twice (the network takes it back too). Nothing was sent under this key yet.
        _fail(refund=refund, txn=txn, code="charge_disputed", now=now, actor=actor,
              message=f"Not sent: transaction {txn.public_id} has an open chargeback; refund after the dispute is closed.",
              details={"gateway": txn.gateway, "attempt": refund.attempts})
        return None
    gateway_name = refund.gateway or txn.gateway
    look_up_first = refund.outcome_unknown and _key_may_be_forgotten(refund, now)
    if look_up_first and _refund_lookup(gateway_name) is None:
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
        _fail(refund=refund, txn=txn, code="idempotency_key_expired", message=message, actor=actor, details=details, now=now)
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


def _refund_abandon_claim(*, refund_id: int, token: str) -> None:
    """The run holding the claim crashed after claiming (maybe after the gateway refunded):
    give the claim up so a redelivered task need not wait for the lease, outcome unknown."""
    try:
        Refund.objects.filter(pk=refund_id, status=R.PROCESSING, attempt_token=token).update(
            attempt_token="", in_flight_until=None, outcome_unknown=True, updated_at=timezone.now()
        )
    except Exception:  # the database may be what failed; the lease expires on its own
        logger.exception("could not give up a refund attempt claim", extra={"refund_id": refund_id})


@transaction.atomic
def _refund_record_outcome(
    *, refund_id: int, result: OperationResult | GatewayError, actor: Actor, final_attempt: bool,
    token: str | None = None, idempotency_key: str | None = None, authoritative: bool = False,
) -> Refund:
    """Record what the gateway answered. A success is always recorded, whoever reports it
    (the money left). Anything else only from the holder of the current claim (`token`) or
    from the gateway's own word about this refund (`authoritative`: a webhook, a lookup)."""
    txn, refund = _lock(refund_id)
    now = timezone.now()
    key = idempotency_key or refund.idempotency_key
    details = {"gateway": refund.gateway, "attempt": refund.attempts, "idempotency_key": key}

    if isinstance(result, OperationResult) and result.succeeded:
        return _record_success(txn=txn, refund=refund, reference=result.reference, key=key, actor=actor,
                               details=details, now=now)

    holder = token is not None and refund.attempt_token == token
    if refund.status != R.PROCESSING or not (holder or authoritative):
        logger.info("refund outcome not recorded: the attempt no longer holds the claim",
                    extra={"refund": refund.public_id, "status": refund.status,
                           "error": getattr(result, "code", None) or getattr(result, "error_code", None)})
        return refund  # another run recorded it meanwhile, or owns the refund now

    if isinstance(result, (OperationResult, GatewayRequestError)):
        code = (result.error_code or "refund_refused") if isinstance(result, OperationResult) else result.code
        message = (result.message if isinstance(result, OperationResult) else str(result)) or "The gateway refused the refund."
        if authoritative:
            # The gateway's word about this very refund: it refunded nothing.
            refund.outcome_unknown = False
            return _fail(refund=refund, txn=txn, code=code, message=message, actor=actor, details=details, now=now)
        if refund.outcome_unknown and code in ALREADY_REFUNDED_CODES:
            # After a call whose outcome was unknown: the money went out (that call refunded).
            audit_record(actor=actor, action=AuditAction.REFUND_RECOVERED, target=refund,
                         details={**details, "inferred_from": code, "note": "confirm at the gateway in reconciliation"})
            return _record_success(txn=txn, refund=refund, reference=None, key=key, actor=actor, details=details, now=now)
        if code not in UNKNOWN_OUTCOME_CODES:
            if refund.outcome_unknown:
                # A refusal following a timeout does not say the earlier call refunded nothing.
                message = f"{message} (after an earlier call with an unknown outcome: reconcile manually)"
            return _fail(refund=refund, txn=txn, code=code, message=message, actor=actor, details=details, now=now)
        result = GatewayTimeout(message, code=code)

    # Unavailable (nothing happened) or timeout (unknown outcome): retry with the same key.
    unknown = not isinstance(result, GatewayUnavailableError)
    if isinstance(result, GatewayTimeout):
        logger.warning("gateway timeout on refund; outcome unknown, will retry with the same key",
                       extra={"refund": refund.public_id, "transaction": txn.public_id, "gateway": refund.gateway})
    if final_attempt:
        refund.outcome_unknown = refund.outcome_unknown or unknown
        return _fail(refund=refund, txn=txn, code=result.code, message=str(result), actor=actor, details=details, now=now)
    next_retry_at = now + dt.timedelta(seconds=refund_retry_delay(refund.attempts))
    refund.record_attempt_error(code=result.code, message=str(result), unknown_outcome=unknown, next_retry_at=next_retry_at)
    refund.save()
    audit_record(
        actor=actor, action=AuditAction.REFUND_ATTEMPT_FAILED, target=refund, result="failure",
        details={**details, "error": result.code, "outcome_unknown": unknown, "next_retry_at": next_retry_at.isoformat()},
    )
    return refund


def _record_success(
    *, txn: Transaction, refund: Refund, reference: str | None, key: str, actor: Actor, details: dict, now,
) -> Refund:
    """The gateway refunded under `key`: record it, whatever state the refund is in. A refund
    already failed is recovered (its reservation taken again; if the amount went to other
    refunds meanwhile, it is recorded all the same and an over-refund alert is raised)."""
    if refund.status == R.SUCCEEDED:
        # The same key always answers with the same gateway refund; the stored reference is
        # the key itself only when the gateway's id was not known (charge_already_refunded).
        if reference and reference != refund.gateway_reference and refund.gateway_reference != key:
            _over_refund_alert(txn=txn, refund=refund, actor=actor, details={**details, "reference": reference},
                               why="a second refund was made at the gateway for this refund")
        return refund
    if refund.status not in (R.PROCESSING, R.FAILED):
        logger.error("gateway reports a refund succeeded that FlowPay never sent: reconcile manually",
                     extra={"refund": refund.public_id, "status": refund.status, "reference": reference})
        return refund
    reserved = True
    if refund.status == R.FAILED:
        previous = {"error": refund.failure_code, "attempts": refund.attempts, "outcome_unknown": refund.outcome_unknown}
        if not refund.holds_reservation:
            reserved = _reserve(transaction_id=txn.pk, amount=refund.amount)
        refund.retry(new_key=False, now=now)
        audit_record(actor=actor, action=AuditAction.REFUND_RECOVERED, target=refund,
                     details={**details, **previous, "reference": reference, "re_reserved": reserved})
    refund.mark_succeeded(reference=reference or key, now=now)
    refund.save()
    audit_record(actor=actor, action=AuditAction.REFUND_SUCCEEDED, target=refund, details={**details, "reference": refund.gateway_reference})
    if reserved:
        _apply_to_transaction(txn=txn, refund=refund, actor=actor)
    else:
        _over_refund_alert(txn=txn, refund=refund, actor=actor, details=details,
                           why="its amount was released and taken by other refunds before the gateway's success arrived")
    refund_announce(refund)
    _observe_latency(refund, now)
    return refund


def _over_refund_alert(*, txn: Transaction, refund: Refund, actor: Actor, details: dict, why: str) -> None:
    logger.error("over-refund: the gateway refunded more than FlowPay can record; reconcile manually",
                 extra={"refund": refund.public_id, "transaction": txn.public_id, "amount": refund.amount, "why": why})
    audit_record(actor=actor, action=AuditAction.REFUND_OVER_REFUND_ALERT, target=refund, result="failure",
                 details={**details, "amount": refund.amount, "transaction": txn.public_id, "why": why})


def _fail(*, refund: Refund, txn: Transaction, code: str, message: str, actor: Actor, details: dict, now) -> Refund:
    refund.mark_failed(code=code, message=message, now=now)
    refund.save()
    if not refund.holds_reservation:
        _release(transaction_id=txn.pk, amount=refund.amount)
    audit_record(
        actor=actor, action=AuditAction.REFUND_FAILED, target=refund, result="failure",
        details={**details, "error": code, "message": message[:500], "outcome_unknown": refund.outcome_unknown,
                 "reservation_released": not refund.holds_reservation},
    )
    logger.warning("refund failed", extra={"refund": refund.public_id, "transaction": txn.public_id, "error": code})
    refund_announce(refund)
    _observe_latency(refund, now)
    return refund


def _observe_latency(refund: Refund, now) -> None:
    if refund.processing_started_at is not None:
        refund_processing_latency.labels(gateway=refund.gateway or "none", outcome=refund.status).observe(
            max(0.0, (now - refund.processing_started_at).total_seconds())
        )


# --- recovery -----------------------------------------------------------------------
@transaction.atomic
def refund_retry(*, refund_id: int, actor: Actor) -> Refund:
    """Send a failed refund again (failed → processing) and queue it. After a failure known
    to have refunded nothing the retry uses a fresh gateway idempotency key and must reserve
    its amount again (400 amount_too_large if other refunds took it meanwhile); after an
    unknown outcome it keeps its reservation and re-sends the same key."""
    txn, refund = _lock(refund_id)
    _check_may_refund(actor, txn, Capability.REFUND_RETRY)
    if not can_proceed(refund.retry):
        raise InvalidState(f"Cannot retry a {refund.status} refund: only failed refunds can be retried.")
    _check_no_open_dispute(txn)
    new_key = not refund.outcome_unknown
    if not refund.holds_reservation and not _reserve(transaction_id=txn.pk, amount=refund.amount):
        raise _too_large(Transaction.objects.get(pk=txn.pk), refund.amount)
    previous = {"error": refund.failure_code, "attempts": refund.attempts}
    refund.retry(new_key=new_key, now=timezone.now())
    refund.save()
    audit_record(
        actor=actor, action=AuditAction.REFUND_RETRY, target=refund,
        details={**previous, "idempotency_key": refund.idempotency_key, "new_key": new_key},
    )
    _queue_execution(refund)
    return refund


def refunds_requeue_stalled(*, older_than: dt.timedelta = dt.timedelta(minutes=10)) -> int:
    """Queue again refunds that should be running but are not: pending ones whose task was
    lost (broker outage at commit time) and processing ones whose retry is long overdue
    (worker killed). Re-running is safe: same idempotency key, and a run that finds an
    attempt still in flight (a live claim) leaves it alone; one whose claim expired takes it
    over. Refunds with a live claim are not queued."""
    now = timezone.now()
    cutoff = now - older_than
    stalled = Refund.objects.filter(
        Q(status=R.PENDING, updated_at__lt=cutoff, refund_to_original_method=True)
        | Q(status=R.PROCESSING, next_retry_at__lt=cutoff)
        | Q(status=R.PROCESSING, next_retry_at__isnull=True, updated_at__lt=cutoff)
    ).exclude(in_flight_until__gt=now).values_list("pk", flat=True)
    from refunds.tasks import refund_execute_task

    count = 0
    for refund_id in stalled:
        refund_execute_task.delay(refund_id)
        count += 1
    return count


# --- gateway events (inbound webhooks) ---------------------------------------------------
def refund_find_for_gateway(*, gateway: str, reference: str | None, idempotency_key: str | None) -> Refund | None:
    """The refund a gateway event is about: by the gateway's refund id, else by the
    idempotency key FlowPay sent with it (a refund whose gateway answer was lost has no
    reference yet). A key of an earlier round (before a retry under a fresh key) matches
    nothing: that round is known to have refunded nothing."""
    refunds = Refund.objects.filter(transaction__gateway=gateway)
    if reference:
        found = refunds.filter(gateway_reference=reference).first()
        if found is not None:
            return found
    parts = (idempotency_key or "").split(":")
    if len(parts) in (3, 4) and parts[0] == "flowpay" and parts[2] == "refund":
        found = refunds.filter(public_id=parts[1]).first()
        if found is not None and found.idempotency_key == idempotency_key:
            return found
    return None


@transaction.atomic
def refund_apply_gateway_result(
    *, refund_id: int, succeeded: bool, reference: str | None, failure_code: str | None, actor: Actor
) -> tuple[Refund, bool]:
    """Record a refund's final outcome as its gateway reports it (an inbound webhook).
    Returns (refund, changed).

    - processing → succeeded | failed, exactly as if the gateway call had answered (its
      answer was lost, or the gateway settled the refund asynchronously);
    - failed → succeeded when the gateway says it did refund, audited as `refund.recovered`
      (money that left is never ignored): after an unknown outcome it still holds its
      reservation; after a known one it takes it again, or, if other refunds took the
      amount meanwhile, is recorded anyway with an over-refund alert;
    - failed after an unknown outcome, reported failed: the outcome is now known, the
      reservation is released (audited `refund.outcome_resolved`);
    - anything else is left alone (changed is False): a final refund is never moved back by
      an older event. A refund recorded succeeded that the gateway now reports failed is
      logged for manual reconciliation (the state machine has no way back)."""
    txn, refund = _lock(refund_id)
    if succeeded:
        if refund.status not in (R.PROCESSING, R.FAILED):
            return refund, False
        result = OperationResult(succeeded=True, reference=reference, amount=refund.amount)
        return _refund_record_outcome(refund_id=refund.pk, result=result, actor=actor, final_attempt=True,
                                      authoritative=True), True
    code = failure_code or "refund_failed"
    message = f"The gateway reported the refund failed ({code})."
    if refund.status == R.PROCESSING:
        result = OperationResult(succeeded=False, reference=reference, amount=refund.amount, error_code=code, message=message)
        return _refund_record_outcome(refund_id=refund.pk, result=result, actor=actor, final_attempt=True,
                                      authoritative=True), True
    if refund.status == R.FAILED and refund.outcome_unknown:
        # The gateway's word on the call that timed out: nothing was refunded.
        refund.outcome_unknown = False
        refund.holds_reservation = False
        previous = {"error": refund.failure_code, "attempts": refund.attempts}
        refund.failure_code = code[:64]
        refund.failure_message = message[:500]
        refund.save()
        _release(transaction_id=txn.pk, amount=refund.amount)
        audit_record(actor=actor, action=AuditAction.REFUND_OUTCOME_RESOLVED, target=refund,
                     details={**previous, "gateway_error": code, "reference": reference, "reservation_released": True,
                              "idempotency_key": refund.idempotency_key})
        return refund, True
    if refund.status == R.SUCCEEDED:
        logger.warning(
            "gateway reports a succeeded refund failed: manual reconciliation needed",
            extra={"refund": refund.public_id, "transaction": txn.public_id, "gateway": refund.gateway,
                   "error": failure_code},
        )
    return refund, False
