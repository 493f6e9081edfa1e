"""Stuck transactions: payments whose gateway answer is missing — left `processing` (the
authorization's answer was lost, or the process died around the call), or still
`authorized` after a capture or void whose answer was lost.

Rules. A call whose outcome is unknown is never sent again, nor elsewhere: it is resolved
from what the gateway that received it says (by reference, or by the attempt's idempotency
key). Once resolved a payment continues its normal flow: an automatic-capture payment found
authorized is captured, and every step is audited like any other (Kill Bill's janitor,
without its stuck-retry bug). The beat checker (payments.check_stuck_transactions, every
FLOWPAY_STUCK_CHECK_INTERVAL_SECONDS, 20 s) looks at payments whose last call, or with none
their processing, started FLOWPAY_STUCK_CHECK_AFTER_SECONDS (45 s) ago:
- Nothing sent: a processing payment with no attempt, or whose every attempt failed with an
  error (the gateway or our client proved nothing happened), is failed (`gateway_no_record`)
  without asking anyone. It is decided under the payment's row lock, which every new attempt
  takes first, so no call can start meanwhile. Within about a minute by default.
- Sent, outcome unknown (an attempt `started` or `unknown`: committed before its call, so it
  may have reached the gateway): the gateway is asked. Its record settles the payment. "No
  record" fails it only once the call is FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS (75 s) old
  when the gateway's look-up is authoritative (`lookup_is_authoritative`: the simulator;
  Stripe, whose search lags by up to a minute and falls back to its consistent list), else
  after FLOWPAY_STUCK_NO_RECORD_GRACE_UNVERIFIED_SECONDS (900 s: PayPal, whose look-up
  re-sends the create under its request id, with an undocumented dedup window). Sooner,
  "no record" may mean "not visible yet": failing it would let a retry charge twice. With
  the defaults an authoritative "no record" settles within two minutes of the call.
- A lost capture or void (`transaction_resolve_lost_operation`): the gateway's view of the
  payment settles it (captured → completed, canceled → canceled); a gateway still showing
  it uncaptured means the call had no effect, concluded only after the same no-record grace
  (it may still be applied there), and the attempt is closed as an error.

`payments.services.settlement.transaction_apply_gateway_status` is the one place where a
payment is settled from the gateway's view: the checker, the runbook's manual resolution and
inbound gateway webhooks (gateway_events.services) all go through it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import InvalidRequest, InvalidState
from gateways.base import GatewayError, GatewayPayment
from gateways.registry import gateway_named
from gateways.router import observed_call
from payments.models import CaptureMethod, PaymentAttempt, Transaction, TransactionStatus
from payments.selectors import (  # noqa: F401  (the checker's queries)
    stuck_check_threshold,
    stuck_threshold,
    transactions_stuck,
    unanswered_attempts,
)
from payments.services.settlement import GATEWAY_TO_FLOWPAY, transaction_apply_gateway_status  # noqa: F401  (stuck's API)
from payments.services.transactions import transaction_capture

logger = logging.getLogger(__name__)

S = TransactionStatus
A = PaymentAttempt.Outcome
# A capture (authorized payments) or a void (authorized or requires_action) can be lost.
LOST_OPERATIONS = (PaymentAttempt.Operation.CAPTURE, PaymentAttempt.Operation.VOID)
LOST_OPERATION_STATES = (S.AUTHORIZED, S.REQUIRES_ACTION)
LOST_OPERATION_AUDIT = {PaymentAttempt.Operation.CAPTURE: AuditAction.TRANSACTION_CAPTURE,
                        PaymentAttempt.Operation.VOID: AuditAction.TRANSACTION_CANCEL}


@dataclass(frozen=True)
class GatewayView:
    """FlowPay's record of a payment next to the gateway's."""

    transaction: Transaction
    attempt: PaymentAttempt | None
    gateway_payment: GatewayPayment | None
    error: str | None = None  # the gateway could not be asked

    @property
    def gateway_status(self) -> str | None:
        return self.gateway_payment.status if self.gateway_payment else None

    @property
    def implied_status(self) -> str | None:
        """The FlowPay status the gateway's answer implies (failed when it has no record)."""
        if self.error:
            return None
        if self.gateway_payment is None:
            return S.FAILED
        return GATEWAY_TO_FLOWPAY.get(self.gateway_payment.status)

    @property
    def consistent(self) -> bool:
        implied = self.implied_status
        if implied is None:
            return False
        status = self.transaction.status
        if implied == S.COMPLETED:
            return status in (S.COMPLETED, S.PARTIALLY_REFUNDED, S.REFUNDED)
        if implied == S.FAILED:
            return status in (S.FAILED, S.CANCELED)
        return status == implied


def no_record_grace(gateway: str | None = None) -> dt.timedelta:
    """How long after a call was sent "the gateway has no record of it" (or "it did not act
    on it") may still mean "not visible yet" (search lag, a request still running there):
    the module's rule, per gateway."""
    try:
        authoritative = bool(gateway) and getattr(gateway_named(gateway), "lookup_is_authoritative", False)
    except LookupError:  # a gateway no longer configured: the conservative grace
        authoritative = False
    if authoritative:
        return dt.timedelta(seconds=settings.FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS)
    return dt.timedelta(seconds=settings.FLOWPAY_STUCK_NO_RECORD_GRACE_UNVERIFIED_SECONDS)


def transaction_gateway_view(*, transaction_id: int) -> GatewayView:
    """Ask the transaction's gateway what it knows, by reference when we have one, else by
    the idempotency key of the last authorization attempt."""
    txn = Transaction.objects.select_related("merchant").get(pk=transaction_id)
    attempt = txn.attempts.filter(operation=PaymentAttempt.Operation.AUTHORIZE).order_by("-number").first()
    if not txn.gateway:
        return GatewayView(transaction=txn, attempt=attempt, gateway_payment=None, error="no gateway was ever called")
    gateway = gateway_named(txn.gateway)
    reference = txn.gateway_reference or (attempt.gateway_reference if attempt else "")
    try:
        if reference:
            found = observed_call(gateway=txn.gateway, operation="fetch", flowpay_id=txn.public_id, call=lambda: gateway.fetch(reference=reference))
        elif attempt is not None:
            found = observed_call(
                gateway=txn.gateway, operation="fetch", flowpay_id=txn.public_id, call=lambda: gateway.fetch(idempotency_key=attempt.idempotency_key)
            )
        else:
            found = None
    except GatewayError as exc:
        return GatewayView(transaction=txn, attempt=attempt, gateway_payment=None, error=f"{exc.code}: {exc}")
    return GatewayView(transaction=txn, attempt=attempt, gateway_payment=found)


def transaction_resolve_stuck(*, transaction_id: int, actor: Actor) -> Transaction:
    """Settle a payment whose gateway answer is missing (the module's rules): a processing
    one from what its gateway says, failed at once when nothing was sent; an authorized one
    with a lost capture or void through transaction_resolve_lost_operation. Leaves it as it
    is when the gateway cannot be asked, or "no record" is still within the grace."""
    status = Transaction.objects.filter(pk=transaction_id).values_list("status", flat=True).get()
    if status in LOST_OPERATION_STATES:
        return transaction_resolve_lost_operation(transaction_id=transaction_id, actor=actor)
    failed = _transaction_fail_if_nothing_sent(transaction_id=transaction_id, actor=actor)
    if failed is not None:
        return failed
    view = transaction_gateway_view(transaction_id=transaction_id)
    if view.transaction.status != S.PROCESSING or view.error:
        if view.error:
            logger.warning("stuck transaction: gateway could not be asked", extra={"transaction": view.transaction.public_id, "error": view.error})
        return view.transaction
    if view.implied_status is None:
        # The gateway is still working on it (e.g. "processing"): ask again next round.
        return view.transaction
    attempt = view.attempt
    if (
        view.gateway_payment is None
        and attempt is not None
        and attempt.outcome in (PaymentAttempt.Outcome.STARTED, PaymentAttempt.Outcome.UNKNOWN)
        and attempt.started_at > timezone.now() - no_record_grace(view.transaction.gateway)
    ):
        # A call was sent and its outcome is unknown: "no record" may only mean "not visible
        # yet" (Stripe's search lags, the request may still run there). Failing it now would
        # let a retry charge again; ask again later.
        return view.transaction
    txn = _transaction_apply_gateway_view(view=view, target=view.implied_status, actor=actor, forced_reason=None)
    return transaction_continue_after_settlement(transaction=txn, actor=actor)


@transaction.atomic
def _transaction_fail_if_nothing_sent(*, transaction_id: int, actor: Actor) -> Transaction | None:
    """Fail a processing payment for which nothing was sent to any gateway (no attempt, or
    only attempts that failed with an error: nothing happened); None when something may
    have been sent. Under the row lock that _attempt_begin takes before any new call."""
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    if txn.status != S.PROCESSING or txn.attempts.exclude(outcome=A.ERROR).exists():
        return None
    return transaction_apply_gateway_status(
        transaction_id=txn.pk, gateway_status=None, reference=None, amount_captured=0, actor=actor,
        target=S.FAILED, failure_code="gateway_no_record",
        failure_message="No gateway call was made for this payment; nothing was charged.",
        details={"gateway_error": None, "reason": "nothing_sent"},
    ).transaction


def transaction_resolve_lost_operation(*, transaction_id: int, actor: Actor) -> Transaction:
    """An authorized (or requires_action) payment with a capture or void whose answer was
    lost: settle it from the gateway's view of the payment (captured → completed, canceled →
    canceled, and the attempt takes the known outcome). A gateway still showing it as it
    was means the call had no effect: once the call is older than the no-record grace the
    attempt is closed as an error, and an automatic-capture payment is captured again."""
    txn = Transaction.objects.get(pk=transaction_id)
    lost = list(_unanswered_captures_and_voids(txn))
    if txn.status not in LOST_OPERATION_STATES or not lost or not txn.gateway:
        return txn
    gateway = gateway_named(txn.gateway)
    try:
        found = observed_call(gateway=txn.gateway, operation="fetch", flowpay_id=txn.public_id, call=lambda: gateway.fetch(reference=txn.gateway_reference))
    except GatewayError as exc:
        logger.warning("lost capture or void: gateway could not be asked", extra={"transaction": txn.public_id, "error": str(exc)})
        return txn
    if found is None or GATEWAY_TO_FLOWPAY.get(found.status) is None:
        # No record of an authorized payment (an anomaly for operators), or still settling there.
        logger.warning("lost capture or void: the gateway's view settles nothing yet",
                       extra={"transaction": txn.public_id, "gateway_status": found.status if found else None})
        return txn
    applied = transaction_apply_gateway_status(
        transaction_id=txn.pk, gateway_status=found.status, reference=found.reference,
        amount_captured=found.amount_captured, actor=actor,
        details={"gateway_error": None, "lost": [attempt.operation for attempt in lost]},
    )
    if not applied.changed and lost[-1].started_at > timezone.now() - no_record_grace(txn.gateway):
        return applied.transaction  # too early to conclude the call had no effect: ask again next round
    _lost_attempts_close(transaction_id=txn.pk, gateway_status=found.status, actor=actor)
    if applied.changed or found.status == "requires_capture":
        # The normal flow: an automatic-capture payment (found) authorized is captured.
        return transaction_continue_after_settlement(transaction=Transaction.objects.get(pk=txn.pk), actor=actor)
    return Transaction.objects.get(pk=txn.pk)


def _unanswered_captures_and_voids(txn: Transaction):
    cutoff = timezone.now() - stuck_check_threshold()
    return txn.attempts.filter(unanswered_attempts(cutoff=cutoff), operation__in=LOST_OPERATIONS).order_by("number")


@transaction.atomic
def _lost_attempts_close(*, transaction_id: int, gateway_status: str, actor: Actor) -> None:
    """Close the capture and void attempts still unknown once the gateway's view excludes
    their having acted (it shows the payment uncaptured, or settled otherwise)."""
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    now = timezone.now()
    for attempt in _unanswered_captures_and_voids(txn):
        attempt.outcome, attempt.error_code = A.ERROR, "gateway_no_effect"
        attempt.error_message = f"The gateway shows the payment {gateway_status}: this {attempt.operation} had no effect."
        attempt.finished_at = attempt.finished_at or now
        attempt.save(update_fields=["outcome", "error_code", "error_message", "finished_at"])
        audit_record(
            actor=actor, action=LOST_OPERATION_AUDIT[attempt.operation], target=txn, result="failure",
            details={"error": "gateway_no_effect", "attempt": attempt.number, "gateway_status": gateway_status},
        )


def transaction_continue_after_settlement(*, transaction: Transaction, actor: Actor) -> Transaction:
    """The normal flow after a payment was settled from the gateway's view (checker or
    webhook): an automatic-capture payment found authorized is captured, not left authorized.
    Holds no lock: the capture service takes its own (it calls the gateway)."""
    if transaction.status == S.AUTHORIZED and transaction.capture_method == CaptureMethod.AUTOMATIC:
        try:
            return transaction_capture(transaction_id=transaction.pk, amount=None, actor=actor)
        except InvalidState:
            # A capture is in flight (or the payment moved on): that call settles it.
            return Transaction.objects.get(pk=transaction.pk)
    return transaction


def transaction_resolve_manually(
    *, transaction_id: int, status: str, actor: Actor, force: bool = False, reason: str = ""
) -> Transaction:
    """The runbook's resolve-stuck-transaction: settle a processing transaction as
    `completed` or `failed`. Refused when the gateway says otherwise, unless forced with a
    reason (audited with the gateway's view)."""
    if status not in (S.COMPLETED, S.FAILED):
        raise InvalidRequest("status must be 'completed' or 'failed'.", param="status")
    if force and not reason.strip():
        raise InvalidRequest("--force needs a --reason (it is written to the audit log).", param="reason")
    view = transaction_gateway_view(transaction_id=transaction_id)
    recovering = view.transaction.status == S.FAILED and status == S.COMPLETED
    if view.transaction.status != S.PROCESSING and not recovering:
        raise InvalidState(
            f"Transaction {view.transaction.public_id} is {view.transaction.status}, not processing: nothing to resolve "
            "(a failed one that the gateway completed can be resolved with --status=completed)."
        )
    if view.implied_status != status and not force:
        said = view.error or (view.gateway_status or "no record of this payment")
        raise InvalidState(
            f"The gateway ({view.transaction.gateway}) says: {said}; refusing to mark {view.transaction.public_id} "
            f"{status}. Use --force with a --reason to override."
        )
    return _transaction_apply_gateway_view(view=view, target=status, actor=actor, forced_reason=reason if force else None)


def _transaction_apply_gateway_view(*, view: GatewayView, target: str, actor: Actor, forced_reason: str | None) -> Transaction:
    """The checker's and the runbook command's settlement: `target` from the gateway's
    answer (or forced). Failed payments are recovered only when the caller saw them failed."""
    found = view.gateway_payment
    if target == S.FAILED:
        failure_code = "gateway_no_record" if found is None and not forced_reason else (found.status if found else "resolved_failed")
    else:
        failure_code = None
    applied = transaction_apply_gateway_status(
        transaction_id=view.transaction.pk,
        gateway_status=view.gateway_status,
        reference=found.reference if found else None,
        amount_captured=found.amount_captured if found else 0,
        actor=actor,
        target=target,
        failure_code=failure_code,
        allow_recovery=view.transaction.status == S.FAILED,
        forced_reason=forced_reason,
        details={"gateway_error": view.error},
    )
    return applied.transaction
