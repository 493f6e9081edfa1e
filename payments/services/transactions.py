"""Payment services: create (authorize, with or without capture), capture, cancel.

Creation is request-then-confirm: the transaction and its attempt are committed as
`processing` before the gateway is called, and the outcome is recorded in a second short
transaction. No row lock or database transaction is held during the gateway call, and a
crash in between leaves a `processing` transaction with a `started` attempt, which the
stuck-transaction checker resolves by asking the same gateway by idempotency key.

Capture and cancel hold the transaction's row lock across their (short) gateway call: they
act on an existing authorization, and the lock is what makes two concurrent captures of
one payment impossible.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm import can_proceed

from accounts.models import Merchant
from audit.actions import AuditAction
from audit.services import audit_entry, audit_record, audit_record_all
from core.actors import Actor
from core.errors import (
    AmountTooLarge,
    ErrorCode,
    GatewayUnavailable,
    InvalidRequest,
    InvalidState,
    NotFound,
    error_code_for,
)
from core.idempotency import IdempotencyClaim
from core.observability.metrics import payment_processing_latency, payments_processed
from core.selectors import Scope
from gateways.base import (
    ChargeRequest,
    ChargeResult,
    Gateway,
    GatewayError,
    GatewayRequestError,
    GatewayTimeout,
    GatewayUnavailableError,
    OperationResult,
    Outcome,
)
from gateways.breaker import breaker_for
from gateways.registry import gateway_named
from gateways.router import (
    any_gateway_supports,
    backoff_delay,
    max_retries,
    next_gateway_for_new_payment,
    observed_call,
    primary_gateway_name,
)
from payments.models import CaptureMethod, Customer, PaymentAttempt, PaymentMethod, Transaction, TransactionStatus
from payments.representations import transaction_representation
from payments.selectors import customer_get, payment_method_get_saved
from payments.services.authorization import OUTCOME_FIELDS, authorization_apply, latency_ms
from payments.services.gateway_keys import (
    AUTHORIZE,
    authorize_key,
    derived_key,
    gateway_key_base,
    gateway_key_base_for,
    transaction_key,
)
from payments.services.ledger_postings import transaction_post_capture
from payments.services.screening import (
    ScreeningContext,
    transaction_fraud_block,
    transaction_screen,
    transaction_screening_settle,
)
from payments.services.settlement import transaction_apply_gateway_status
from payments.services.transaction_events import transaction_announce

logger = logging.getLogger(__name__)

S = TransactionStatus


@dataclass(frozen=True)
class PaymentInput:
    amount: int
    currency: str
    payment_method: str
    capture_method: str = CaptureMethod.AUTOMATIC
    customer: str | None = None  # public id
    description: str = ""
    metadata: dict | None = None
    # The paying customer's side of the request: the payment is fraud-screened (API payments).
    screening: ScreeningContext | None = None


def transaction_create(
    *, merchant: Merchant, payment: PaymentInput, actor: Actor, livemode: bool = False,
    idempotency_record_id: int | None = None, idempotency: IdempotencyClaim | None = None,
) -> Transaction:
    """Create a payment and take it through the router. Returns the transaction in its
    resulting state (completed, authorized, requires_action, failed, or processing when
    the gateway's answer was lost).

    Two short database transactions around the gateway call (request-then-confirm), and
    the only two places where the create path writes: `_transaction_open` before the call
    (the Idempotency-Key's claim, the transaction, its audit entries, its first attempt)
    and `_transaction_record_authorization` after it (the outcome, its audit entry, the
    merchant's event, the Idempotency-Key's answer). Work that must commit with either
    belongs there.

    Under a merchant's Idempotency-Key the API passes `idempotency`, which this service
    claims and answers in those two transactions (core.idempotency.IdempotencyClaim);
    `idempotency_record_id` is a record its caller claimed beforehand (the rebill jobs).

    Each gateway try is one PaymentAttempt with its own gateway idempotency key (derived
    from the merchant's Idempotency-Key when there is one: payments.services.gateway_keys).
    A try that failed with GatewayUnavailableError (nothing happened) is retried on the same
    gateway with backoff, then failed over to the next gateway the router offers. A decline
    is final. A timeout leaves the transaction processing: it is never sent elsewhere.
    Fraud screening runs between the opening and the first try (payments.services.screening):
    a payment it blocks is never sent, and its first attempt is closed unsent."""
    record_id = idempotency.record_id if idempotency is not None else idempotency_record_id
    if record_id is not None:
        # A request re-run under a key already claimed (after a crash): never charge again.
        existing = Transaction.objects.filter(idempotency_record_id=record_id).first()
        if existing is not None:
            return existing
    if idempotency is not None:
        key_base = gateway_key_base_for(scope=idempotency.scope, key=idempotency.key, fingerprint=idempotency.fingerprint)
    else:
        key_base = gateway_key_base(idempotency_record_id=idempotency_record_id)

    started = time.perf_counter()
    source = _payment_source(merchant=merchant, payment=payment, livemode=livemode)
    gateway = next_gateway_for_new_payment(payment_method=source.token, exclude=set(), only=source.pinned_gateway)
    opening = dict(
        merchant=merchant, payment=payment, source=source, gateway=gateway.name if gateway is not None else None,
        actor=actor, livemode=livemode, idempotency=idempotency, idempotency_record_id=idempotency_record_id,
    )
    try:
        txn, attempt = _transaction_open(**opening, key_base=key_base)
    except DerivedKeyUsed as used:
        # An earlier request's, whose record is gone (gateway_keys' rule): the first
        # attempt goes under the per-transaction key; nothing of the first opening stays.
        if not PaymentAttempt.objects.filter(idempotency_key=used.key).exists():
            raise used.__cause__ from None
        if idempotency is not None:
            idempotency.rolled_back()
        txn, attempt = _transaction_open(**opening, key_base=None)
    screening = transaction_screen(txn=txn, context=payment.screening, key_base=key_base, actor=actor)
    if screening is not None and screening.blocked:
        return transaction_fraud_block(transaction_id=txn.pk, attempt_id=attempt.pk if attempt else None,
                                       screening=screening, actor=actor)
    txn, result, settled_meanwhile = _transaction_route(
        txn=txn, gateway=gateway, attempt=attempt, pinned_gateway=source.pinned_gateway, key_base=key_base, actor=actor,
        idempotency=idempotency, three_d_secure=screening is not None and screening.three_d_secure,
    )
    if settled_meanwhile:  # by the checker or a webhook, between two tries
        return transaction_screening_settle(txn=txn, screening=screening, result=None, actor=actor)
    if result is None:
        txn = _transaction_fail(
            transaction_id=txn.pk, code="gateway_unavailable",
            message="No payment gateway could take the payment; nothing was charged.", actor=actor,
        )
    txn = transaction_screening_settle(txn=txn, screening=screening, result=result, actor=actor)
    payment_processing_latency.labels(gateway=txn.gateway or "none", outcome=txn.status).observe(time.perf_counter() - started)
    payments_processed.labels(gateway=txn.gateway or "none", status=txn.status).inc()
    if isinstance(result, GatewayRequestError):
        raise InvalidRequest(str(result), code=error_code_for(result.code), param="payment_method")
    if result is None:
        raise GatewayUnavailable(
            f"No payment gateway is available right now; transaction {txn.public_id} was not charged. Retry later."
        )
    return txn


@dataclass(frozen=True)
class PaymentSource:
    """What a payment is charged with: its customer, and the token sent to the gateway (a
    saved method's, which works only at the gateway that issued it, or the one sent)."""

    customer: Customer | None
    token: str
    saved: PaymentMethod | None

    @property
    def pinned_gateway(self) -> str | None:
        # A saved token only works at the gateway that issued it: no failover for it.
        return self.saved.gateway if self.saved is not None else None


def _payment_source(*, merchant: Merchant, payment: PaymentInput, livemode: bool) -> PaymentSource:
    """The payment's customer and saved method, which must be the merchant's, of the
    payment's mode (reads only: a bad reference is a 400 before anything is written)."""
    scope = Scope(merchant=merchant, livemode=livemode)
    customer = None
    if payment.customer:
        try:
            customer = customer_get(public_id=payment.customer, scope=scope, param="customer")
        except NotFound as exc:  # a bad reference in the body is a 400, as at Stripe
            raise InvalidRequest(exc.message, code=exc.code, param="customer") from None
    token, saved = payment.payment_method, None
    if _may_be_saved_method_id(token):
        saved = payment_method_get_saved(public_id=token, scope=scope)
    if saved is None and not any_gateway_supports(token):
        raise InvalidRequest(f"No such payment method: '{token[:60]}'", code=ErrorCode.RESOURCE_MISSING, param="payment_method")
    if saved is not None:
        if customer is not None and saved.customer_id != customer.pk:
            raise InvalidRequest("This payment method belongs to another customer.", param="payment_method")
        token, customer = saved.gateway_token, customer or saved.customer
    return PaymentSource(customer=customer, token=token, saved=saved)


def _may_be_saved_method_id(token: str) -> bool:
    # Saved methods have generated ids: "pm_" then letters and digits (core.models.new_public_id).
    # A gateway's own token with more underscores (pm_card_visa) cannot be one: not looked up.
    rest = token[3:]
    return token.startswith("pm_") and rest.isascii() and rest.isalnum()


def _transaction_route(
    *, txn: Transaction, gateway: Gateway | None, attempt: PaymentAttempt | None, pinned_gateway: str | None,
    key_base: str | None, actor: Actor, idempotency: IdempotencyClaim | None, three_d_secure: bool = False,
) -> tuple[Transaction, ChargeResult | GatewayError | None, bool]:
    """Try the gateways the router offers (see transaction_create), starting with `gateway`
    and its `attempt` recorded by _transaction_open. Returns the transaction, the last
    gateway answer (None: no gateway took the call) and whether the transaction was settled
    meanwhile by the checker or a webhook (then no further try was made)."""
    request = ChargeRequest(
        amount=txn.amount, currency=txn.currency, payment_method=txn.payment_method_token,
        capture=txn.capture_method == CaptureMethod.AUTOMATIC, flowpay_reference=txn.public_id,
        description=txn.description, customer_reference=txn.customer.public_id if txn.customer else None,
        metadata={"flowpay_transaction": txn.public_id}, three_d_secure=three_d_secure,
    )
    result: ChargeResult | GatewayError | None = None
    tried: set[str] = set()
    while gateway is not None and result is None:
        for retry in range(max_retries() + 1):
            if attempt is None:  # a retry or a failover: its own transaction, under the row lock
                attempt = _attempt_begin(transaction_id=txn.pk, gateway=gateway.name, actor=actor, key_base=key_base)
                if attempt is None:  # settled meanwhile by the checker or a webhook
                    return Transaction.objects.get(pk=txn.pk), None, True
                txn.gateway = attempt.gateway
            try:
                result = observed_call(
                    gateway=gateway.name, operation="authorize", flowpay_id=txn.public_id,
                    call=lambda g=gateway, key=attempt.idempotency_key: g.authorize(payment=request, idempotency_key=key),
                )
            except GatewayUnavailableError as exc:
                _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.ERROR, error_code=exc.code, message=str(exc))
                attempt = None
                if retry < max_retries() and breaker_for(gateway.name).allow_request():
                    time.sleep(backoff_delay(retry))
                    continue
                break
            except GatewayError as exc:
                result = exc
            txn = _transaction_record_authorization(txn=txn, attempt=attempt, result=result, actor=actor, idempotency=idempotency)
            break
        tried.add(gateway.name)
        if result is None:
            gateway = next_gateway_for_new_payment(payment_method=request.payment_method, exclude=tried, only=pinned_gateway)
    return txn, result, False


@transaction.atomic
def _attempt_begin(*, transaction_id: int, gateway: str, actor: Actor, key_base: str | None) -> PaymentAttempt | None:
    """Record the next authorization try (and the gateway it goes to) before calling it."""
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    if txn.status != S.PROCESSING:
        return None
    previous = txn.attempts.order_by("-number").first()
    if previous is not None:
        action = AuditAction.TRANSACTION_RETRY if previous.gateway == gateway else AuditAction.TRANSACTION_FAILOVER
        audit_record(
            actor=actor, action=action, target=txn,
            details={"from_gateway": previous.gateway, "to_gateway": gateway, "attempt": previous.number + 1,
                     "previous_error": previous.error_code},
        )
    if txn.gateway != gateway:
        txn.gateway = gateway
        txn.save(update_fields=["gateway", "updated_at"])
    return _attempt_start(txn=txn, operation=PaymentAttempt.Operation.AUTHORIZE, amount=txn.amount, key_base=key_base)


@transaction.atomic
def _transaction_fail(*, transaction_id: int, code: str, message: str, actor: Actor) -> Transaction:
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    if txn.status == S.PROCESSING:
        txn.mark_failed(code=code, message=message, reference=None, now=timezone.now())
        txn.save()
        audit_record(actor=actor, action=AuditAction.TRANSACTION_FAILED, target=txn, result="failure", details={"error": code})
        transaction_announce(txn)
    return txn


@transaction.atomic
def _transaction_open(
    *, merchant: Merchant, payment: PaymentInput, source: PaymentSource, gateway: str | None, actor: Actor,
    livemode: bool, key_base: str | None, idempotency: IdempotencyClaim | None, idempotency_record_id: int | None,
) -> tuple[Transaction, PaymentAttempt | None]:
    """Before the gateway call, in one database transaction, what must exist before a
    gateway may be asked to charge: the Idempotency-Key's claim (first, so that a concurrent
    request with the same key waits here, then loses), the transaction, processing, with
    its audit entries (one INSERT), and its first attempt, started, under the gateway key it
    is sent with (none when no gateway can take the payment). A crash before the commit
    leaves nothing; after it, a processing transaction with a started attempt, which the
    stuck-transaction checker resolves by asking that gateway."""
    record_id = idempotency.claim().pk if idempotency is not None else idempotency_record_id
    txn = Transaction(
        merchant=merchant, customer=source.customer, livemode=livemode, amount=payment.amount,
        currency=payment.currency, capture_method=payment.capture_method,
        payment_method=payment.payment_method, payment_method_token=source.token, saved_payment_method=source.saved,
        description=payment.description, metadata=payment.metadata or {},
        idempotency_record_id=record_id,
    )
    txn.start_processing(gateway=gateway or source.pinned_gateway or primary_gateway_name(), now=timezone.now())
    txn.save(force_insert=True)
    audit_record_all([
        audit_entry(
            actor=actor, action=AuditAction.TRANSACTION_CREATE, target=txn,
            details={"amount": txn.amount, "currency": txn.currency, "capture_method": txn.capture_method},
        ),
        audit_entry(actor=actor, action=AuditAction.TRANSACTION_PROCESSING, target=txn, details={"gateway": txn.gateway}),
    ])
    if gateway is None:
        return txn, None
    # The transaction was inserted by this database transaction: it has no attempt yet. Its
    # key is not looked up first: the unique index refuses one already used (DerivedKeyUsed).
    key = derived_key(base=key_base, number=1) if key_base is not None else transaction_key(txn=txn, operation=AUTHORIZE, number=1)
    try:
        attempt = _attempt_insert(txn=txn, operation=AUTHORIZE, amount=txn.amount, number=1, key=key)
    except IntegrityError as exc:
        if key_base is None:
            raise
        raise DerivedKeyUsed(key) from exc  # leaves (and rolls back) this database transaction
    return txn, attempt


class DerivedKeyUsed(Exception):
    """The first attempt's derived gateway key is already an attempt's (see transaction_create)."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


@transaction.atomic
def _transaction_record_authorization(
    *, txn: Transaction, attempt: PaymentAttempt, result: "ChargeResult | GatewayError", actor: Actor,
    idempotency: IdempotencyClaim | None = None,
) -> Transaction:
    """After the gateway's answer, in one database transaction: the attempt's outcome, the
    transaction's transition, its audit entry, the merchant's event (outbox) and the
    Idempotency-Key's answer, all from one rendering of the transaction.

    `txn` and `attempt` are this request's, as _transaction_open and the router left them.
    The transaction's row is written by a conditional UPDATE, only while it is still
    processing (which also takes its row lock, before the attempt's, the order every
    settlement locks in); when the stuck-transaction checker or a gateway webhook settled
    it during the call, it is locked and read instead, and the late answer recorded as such
    (_record_after_settlement)."""
    now = timezone.now()
    recorded = authorization_apply(txn=txn, attempt=attempt, result=result, now=now)
    txn.updated_at = now
    still_processing = Transaction.objects.filter(pk=txn.pk, status=S.PROCESSING).update(
        updated_at=now, **{field: getattr(txn, field) for field in OUTCOME_FIELDS}
    )
    if not still_processing:
        locked = Transaction.objects.select_for_update().get(pk=txn.pk)
        late = PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
        late.finished_at, late.latency_ms = now, latency_ms(late, now)
        return _record_after_settlement(txn=locked, attempt=late, result=result, actor=actor)
    PaymentAttempt.objects.filter(pk=attempt.pk).update(
        outcome=attempt.outcome, gateway_reference=attempt.gateway_reference, error_code=attempt.error_code,
        error_message=attempt.error_message, finished_at=attempt.finished_at, latency_ms=attempt.latency_ms,
    )
    if isinstance(result, GatewayTimeout):
        logger.warning("gateway timeout on authorize; transaction left processing", extra={"transaction": txn.public_id, "gateway": txn.gateway})
    audit_record(actor=actor, action=recorded.action, target=txn, result=recorded.result, details=recorded.details)
    representation = transaction_representation(txn)
    if recorded.announce:
        transaction_announce(txn, representation=representation)
    if idempotency is not None and not isinstance(result, GatewayRequestError):  # that one is answered 400 (released)
        idempotency.complete(txn, representation)
    # Last before the commit: the posting locks the merchant's ledger accounts, which every
    # payment of the merchant needs, so they are held for the posting and the commit only.
    if txn.status == S.COMPLETED:
        transaction_post_capture(txn, gateway_fee=result.fee)
    return txn


def _record_after_settlement(
    *, txn: Transaction, attempt: PaymentAttempt, result: "ChargeResult | GatewayError", actor: Actor
) -> Transaction:
    """The gateway answered after someone (the stuck-transaction checker, a webhook) settled
    the payment meanwhile: record the attempt, and recover a payment settled as failed that
    the gateway did charge, rather than tell the merchant "failed" (who would retry and pay
    again)."""
    succeeded = isinstance(result, ChargeResult) and result.outcome == Outcome.SUCCEEDED
    if succeeded:
        attempt.outcome, attempt.gateway_reference = PaymentAttempt.Outcome.SUCCEEDED, result.reference or ""
    attempt.save()
    if txn.status != S.FAILED or not succeeded:
        return txn
    logger.warning("late gateway success for a payment settled as failed: recovering it",
                   extra={"transaction": txn.public_id, "gateway": txn.gateway})
    return transaction_apply_gateway_status(
        transaction_id=txn.pk, gateway_status="succeeded" if result.amount_captured else "requires_capture",
        reference=result.reference, amount_captured=result.amount_captured, actor=actor, allow_recovery=True,
        target=S.COMPLETED if result.amount_captured else None,
    ).transaction


# Capture and cancel are request-then-confirm: the attempt is committed before the gateway
# call (so a crash during the call leaves an attempt the stuck checker settles from the
# gateway's record), the call runs without the row lock, and the outcome is recorded in a
# second short transaction under the lock. While one capture or void is in flight on a
# payment, another is refused: the gateway would see two conflicting requests.
IN_FLIGHT_OPERATIONS = (PaymentAttempt.Operation.CAPTURE, PaymentAttempt.Operation.VOID)


def transaction_capture(*, transaction_id: int, amount: int | None, actor: Actor) -> Transaction:
    txn, attempt = _capture_begin(transaction_id=transaction_id, amount=amount)
    result = _call_gateway(txn=txn, attempt=attempt, operation="capture", call=lambda gateway: gateway.capture(
        reference=txn.gateway_reference, amount=attempt.amount, idempotency_key=attempt.idempotency_key))
    txn, error = _operation_finish(operation=CAPTURE, transaction_id=transaction_id, attempt_id=attempt.pk, result=result, actor=actor)
    if error is not None:
        raise error
    return txn


@transaction.atomic
def _capture_begin(*, transaction_id: int, amount: int | None) -> tuple[Transaction, PaymentAttempt]:
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    if not can_proceed(txn.capture):
        raise InvalidState(
            f"Cannot capture a {txn.status} transaction: only authorized transactions can be captured."
        )
    amount = txn.amount if amount is None else amount
    if amount > txn.amount:
        raise AmountTooLarge(
            f"Capture amount {amount} exceeds the authorized amount {txn.amount}.", param="amount"
        )
    _refuse_while_in_flight(txn)
    return txn, _attempt_start(txn=txn, operation=PaymentAttempt.Operation.CAPTURE, amount=amount)


def _capture_apply(txn: Transaction, *, attempt: PaymentAttempt, result: OperationResult) -> dict:
    txn.capture(amount=result.amount or attempt.amount, now=timezone.now())
    return {"amount": txn.amount_captured}


def _capture_post(txn: Transaction, *, result: OperationResult) -> None:
    transaction_post_capture(txn, gateway_fee=result.fee)


def transaction_cancel(*, transaction_id: int, actor: Actor) -> Transaction:
    txn, attempt = _cancel_begin(transaction_id=transaction_id)
    result = _call_gateway(txn=txn, attempt=attempt, operation="void", call=lambda gateway: gateway.void(
        reference=txn.gateway_reference, idempotency_key=attempt.idempotency_key))
    txn, error = _operation_finish(operation=VOID, transaction_id=transaction_id, attempt_id=attempt.pk, result=result, actor=actor)
    if error is not None:
        raise error
    return txn


@transaction.atomic
def _cancel_begin(*, transaction_id: int) -> tuple[Transaction, PaymentAttempt]:
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    if not can_proceed(txn.cancel):
        raise InvalidState(
            f"Cannot cancel a {txn.status} transaction: only authorized or requires_action transactions can be "
            "canceled (refund a completed one instead)."
        )
    _refuse_while_in_flight(txn)
    return txn, _attempt_start(txn=txn, operation=PaymentAttempt.Operation.VOID, amount=txn.amount)


def _cancel_apply(txn: Transaction, *, attempt: PaymentAttempt, result: OperationResult) -> dict:
    txn.cancel(now=timezone.now())
    return {}


@dataclass(frozen=True)
class _Operation:
    """What recording the answer to a capture or a void differs in."""

    action: AuditAction
    name: str  # in the refusal's message: "the capture", "the cancellation"
    transition: str  # the Transaction's FSM transition applied on success
    failure_details: Callable[[PaymentAttempt], dict]
    apply: Callable[..., dict]  # applies the transition; the success entry's details
    post: Callable[..., None] | None = None  # the ledger posting of the movement


CAPTURE = _Operation(action=AuditAction.TRANSACTION_CAPTURE, name="capture", transition="capture",
                     failure_details=lambda attempt: {"amount": attempt.amount}, apply=_capture_apply, post=_capture_post)
VOID = _Operation(action=AuditAction.TRANSACTION_CANCEL, name="cancellation", transition="cancel",
                  failure_details=lambda attempt: {}, apply=_cancel_apply)


@transaction.atomic
def _operation_finish(
    *, operation: _Operation, transaction_id: int, attempt_id: int, result: OperationResult | GatewayError, actor: Actor,
) -> tuple[Transaction, Exception | None]:
    """Record the gateway's answer to a capture or void under the transaction's row lock:
    the attempt's outcome, then, on success, the transition, its audit entry, the merchant's
    event and the ledger posting. Returns the transaction and the error to raise, if any."""
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    attempt = PaymentAttempt.objects.get(pk=attempt_id)
    if isinstance(result, GatewayError):
        _attempt_finish(attempt, outcome=_error_outcome(result), error_code=result.code, message=str(result))
        audit_record(actor=actor, action=operation.action, target=txn, result="failure",
                     details={**operation.failure_details(attempt), "error": result.code})
        return txn, _api_error_for(result, txn)
    if not result.succeeded:
        _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.ERROR, error_code=result.error_code or "", message=result.message)
        audit_record(actor=actor, action=operation.action, target=txn, result="failure",
                     details={**operation.failure_details(attempt), "error": result.error_code})
        return txn, InvalidState(f"The gateway refused the {operation.name}: {result.message}",
                                 code=error_code_for(result.error_code or ErrorCode.INVALID_STATE))
    _attempt_finish(attempt, outcome=PaymentAttempt.Outcome.SUCCEEDED, reference=result.reference)
    if not can_proceed(getattr(txn, operation.transition)):
        # The stuck checker settled the payment from the gateway's record while the answer
        # was on its way (it took this call for lost): the record already says what happened.
        return txn, None
    details = operation.apply(txn, attempt=attempt, result=result)
    txn.save()
    audit_record(actor=actor, action=operation.action, target=txn, details=details or None)
    transaction_announce(txn)
    if operation.post is not None:
        operation.post(txn, result=result)
    payments_processed.labels(gateway=txn.gateway, status=txn.status).inc()
    return txn, None


def _refuse_while_in_flight(txn: Transaction) -> None:
    # Under the transaction's row lock: the attempt that makes the next call in flight is
    # created in the same database transaction.
    if txn.attempts.filter(operation__in=IN_FLIGHT_OPERATIONS, outcome=PaymentAttempt.Outcome.STARTED).exists():
        raise InvalidState(
            f"A capture or cancellation of {txn.public_id} is already in progress; retry when it has finished."
        )


def _call_gateway(*, txn: Transaction, attempt: PaymentAttempt, operation: str, call) -> OperationResult | GatewayError:
    """The gateway's answer, or the GatewayError that stands for it (no lock or database
    transaction is held here)."""
    try:
        return observed_call(gateway=txn.gateway, operation=operation, flowpay_id=txn.public_id, call=lambda: call(gateway_named(txn.gateway)))
    except GatewayError as exc:
        return exc


# --- helpers -----------------------------------------------------------------------
def _attempt_start(*, txn: Transaction, operation: str, amount: int, key_base: str | None = None) -> PaymentAttempt:
    # Called under the transaction's row lock, so the next number cannot race.
    number = (txn.attempts.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    if operation == PaymentAttempt.Operation.AUTHORIZE:
        key = authorize_key(txn=txn, number=number, base=key_base)
    else:
        key = transaction_key(txn=txn, operation=operation, number=number)
    return _attempt_insert(txn=txn, operation=operation, amount=amount, number=number, key=key)


def _attempt_insert(*, txn: Transaction, operation: str, amount: int, number: int, key: str) -> PaymentAttempt:
    return PaymentAttempt.objects.create(
        transaction=txn, number=number, operation=operation, gateway=txn.gateway,
        idempotency_key=key, amount=amount, started_at=timezone.now(),
    )


def _attempt_finish(attempt: PaymentAttempt, *, outcome: str, reference: str | None = None, error_code: str = "", message: str = "") -> None:
    now = timezone.now()
    attempt.outcome = outcome
    attempt.gateway_reference = reference or ""
    attempt.error_code = error_code[:64]
    attempt.error_message = message[:500]
    attempt.finished_at = now
    attempt.latency_ms = latency_ms(attempt, now)
    attempt.save()


def _error_outcome(exc: GatewayError) -> str:
    return PaymentAttempt.Outcome.UNKNOWN if isinstance(exc, GatewayTimeout) else PaymentAttempt.Outcome.ERROR


def _api_error_for(exc: GatewayError, txn: Transaction):
    if isinstance(exc, GatewayRequestError):
        return InvalidRequest(str(exc), code=error_code_for(exc.code))
    if isinstance(exc, GatewayTimeout):
        logger.warning("gateway timeout", extra={"transaction": txn.public_id, "gateway": txn.gateway})
    return GatewayUnavailable(f"The payment gateway did not complete the operation on {txn.public_id}; retry later.")
