"""Stuck transactions: payments left `processing` because the gateway's answer was lost.

Rule: a stuck transaction is resolved only by asking the gateway that received it (by the
attempt's idempotency key or reference), never by sending it elsewhere. Once resolved it
continues its normal flow: an automatic-capture payment found authorized is captured, and
every step is audited like any other (Kill Bill's janitor, without its stuck-retry bug).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.services import audit_record
from flowpay.errors import InvalidRequest, InvalidState
from flowpay.observability.metrics import payments_processed
from payments.gateways.base import GatewayError, GatewayPayment
from payments.gateways.registry import gateway_named
from payments.gateways.router import observed_call
from payments.models import CaptureMethod, PaymentAttempt, Transaction, TransactionStatus
from payments.services.transactions import transaction_capture

logger = logging.getLogger(__name__)

S = TransactionStatus
# What the gateway says → the status FlowPay records.
GATEWAY_TO_FLOWPAY = {
    "succeeded": S.COMPLETED,
    "requires_capture": S.AUTHORIZED,
    "requires_action": S.REQUIRES_ACTION,
    "failed": S.FAILED,
    "canceled": S.FAILED,
}


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


def stuck_threshold() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "FLOWPAY_STUCK_AFTER_SECONDS", 120)))


def transactions_stuck(*, older_than: dt.timedelta | None = None):
    cutoff = timezone.now() - (older_than or stuck_threshold())
    return (
        Transaction.objects.filter(status=S.PROCESSING, processing_started_at__lt=cutoff)
        .select_related("merchant")
        .order_by("processing_started_at")
    )


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
    txn = _transaction_apply_gateway_view(view=view, target=view.implied_status, actor=actor, forced_reason=None)
    if txn.status == S.AUTHORIZED and txn.capture_method == CaptureMethod.AUTOMATIC:
        # Normal flow continues: an automatic-capture payment is captured, not left authorized.
        txn = transaction_capture(transaction_id=txn.pk, amount=None, actor=actor)
    return txn


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


@transaction.atomic
def _transaction_apply_gateway_view(*, view: GatewayView, target: str, actor: Actor, forced_reason: str | None) -> Transaction:
    txn = Transaction.objects.select_for_update().get(pk=view.transaction.pk)
    recovering = txn.status == S.FAILED and target == S.COMPLETED and view.transaction.status == S.FAILED
    if txn.status != S.PROCESSING and not recovering:
        return txn  # settled meanwhile (webhook, another checker)
    now = timezone.now()
    found = view.gateway_payment
    reference = (found.reference if found else "") or txn.gateway_reference
    if recovering:
        captured = found.amount_captured if found and found.amount_captured else txn.amount
        txn.recover_completed(reference=reference, amount_captured=min(captured, txn.amount), now=now)
    elif target == S.COMPLETED:
        captured = found.amount_captured if found and found.amount_captured else txn.amount
        txn.mark_completed(reference=reference, amount_captured=min(captured, txn.amount), now=now)
    elif target == S.AUTHORIZED:
        txn.mark_authorized(reference=reference, now=now)
    elif target == S.REQUIRES_ACTION:
        txn.mark_requires_action(reference=reference, next_action={"type": "complete_at_gateway"})
    else:
        code = "gateway_no_record" if found is None and not forced_reason else (found.status if found else "resolved_failed")
        txn.mark_failed(code=code, message="Resolved from the gateway's records.", reference=reference or None, now=now)
    txn.save()
    if view.attempt is not None and view.attempt.outcome in (PaymentAttempt.Outcome.UNKNOWN, PaymentAttempt.Outcome.STARTED):
        outcome = {
            S.COMPLETED: PaymentAttempt.Outcome.SUCCEEDED, S.AUTHORIZED: PaymentAttempt.Outcome.SUCCEEDED,
            S.REQUIRES_ACTION: PaymentAttempt.Outcome.REQUIRES_ACTION,
        }.get(target, PaymentAttempt.Outcome.DECLINED if found else PaymentAttempt.Outcome.ERROR)
        PaymentAttempt.objects.filter(pk=view.attempt.pk).update(
            outcome=outcome, gateway_reference=reference or "", finished_at=view.attempt.finished_at or now
        )
    audit_record(
        actor=actor,
        action=("transaction.recovered" if recovering else "transaction.resolved")
        + ("_forced" if forced_reason is not None else ""),
        target=txn,
        result="success" if txn.status != S.FAILED else "failure",
        details={
            "status": txn.status, "gateway": txn.gateway, "gateway_status": view.gateway_status,
            "gateway_error": view.error, "reason": forced_reason,
        },
    )
    transaction.on_commit(lambda: payments_processed.labels(gateway=txn.gateway, status=txn.status).inc())
    return txn
