"""Stuck transactions: payments left `processing` because the gateway's answer was lost.

Rule: a stuck transaction is resolved only by asking the gateway that received it (by the
attempt's idempotency key or reference), never by sending it elsewhere. Once resolved it
continues its normal flow: an automatic-capture payment found authorized is captured, and
every step is audited like any other (Kill Bill's janitor, without its stuck-retry bug).

`payments.services.settlement.transaction_apply_gateway_status` is the one place where a
payment is settled from the gateway's view: the checker, the runbook's manual resolution and
inbound gateway webhooks (gateway_events.services) all go through it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from core.actors import Actor
from core.errors import InvalidRequest, InvalidState
from gateways.base import GatewayError, GatewayPayment
from gateways.registry import gateway_named
from gateways.router import observed_call
from payments.models import CaptureMethod, PaymentAttempt, Transaction, TransactionStatus
from payments.selectors import stuck_threshold, transactions_stuck  # noqa: F401  (the checker's queries)
from payments.services.settlement import GATEWAY_TO_FLOWPAY, transaction_apply_gateway_status  # noqa: F401  (stuck's API)
from payments.services.transactions import transaction_capture

logger = logging.getLogger(__name__)

S = TransactionStatus


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


def no_record_grace() -> dt.timedelta:
    """How long after a call was sent "the gateway has no record of it" may still mean
    "not visible yet" (search lag, a request still running there)."""
    return dt.timedelta(seconds=settings.FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS)


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
            found = observed_call(gateway=txn.gateway, operation="fetch", call=lambda: gateway.fetch(reference=reference))
        elif attempt is not None:
            found = observed_call(
                gateway=txn.gateway, operation="fetch", call=lambda: gateway.fetch(idempotency_key=attempt.idempotency_key)
            )
        else:
            found = None
    except GatewayError as exc:
        return GatewayView(transaction=txn, attempt=attempt, gateway_payment=None, error=f"{exc.code}: {exc}")
    return GatewayView(transaction=txn, attempt=attempt, gateway_payment=found)


def transaction_resolve_stuck(*, transaction_id: int, actor: Actor) -> Transaction:
    """Settle a processing transaction from what its gateway says. Leaves it processing
    when the gateway cannot be asked; marks it failed when the gateway has no record of it
    (the checker only looks at transactions older than FLOWPAY_STUCK_AFTER_SECONDS)."""
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
        and attempt.started_at > timezone.now() - no_record_grace()
    ):
        # A call was sent and its outcome is unknown: "no record" may only mean "not visible
        # yet" (Stripe's search lags, the request may still run there). Failing it now would
        # let a retry charge again; ask again later. (No attempt, or one that failed before
        # reaching the gateway, means nothing was sent: failing it is safe.)
        return view.transaction
    txn = _transaction_apply_gateway_view(view=view, target=view.implied_status, actor=actor, forced_reason=None)
    return transaction_continue_after_settlement(transaction=txn, actor=actor)


def transaction_continue_after_settlement(*, transaction: Transaction, actor: Actor) -> Transaction:
    """The normal flow after a payment was settled from the gateway's view (checker or
    webhook): an automatic-capture payment found authorized is captured, not left authorized.
    Holds no lock: the capture service takes its own (it calls the gateway)."""
    if transaction.status == S.AUTHORIZED and transaction.capture_method == CaptureMethod.AUTOMATIC:
        return transaction_capture(transaction_id=transaction.pk, amount=None, actor=actor)
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
