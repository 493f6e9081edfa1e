"""Settling a payment from what its gateway says: the one place where that happens. The
stuck-transaction checker, the runbook's manual resolution, a late success seen by the
payment flow itself and inbound gateway webhooks all go through it; it imports none of them.

Only forward moves are made, so events applied in any order converge:
- processing → completed | authorized | requires_action | failed;
- requires_action → (processing →) completed | authorized | failed: the customer finished
  (or failed) the authentication at the gateway; canceled at the gateway → canceled;
- authorized → completed when the gateway reports it captured (a capture whose answer was
  lost, or made at the gateway), canceled when the gateway canceled it;
- failed → completed only with `allow_recovery` (the gateway took the money after all).
Anything else (a completed payment and an older event, the same status again) is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.observability.metrics import payments_processed
from payments.models import PaymentAttempt, Transaction, TransactionStatus
from payments.services.ledger_postings import transaction_post_capture
from payments.services.transaction_events import transaction_announce

S = TransactionStatus
# What the gateway says → the status FlowPay records.
GATEWAY_TO_FLOWPAY = {
    "succeeded": S.COMPLETED,
    "requires_capture": S.AUTHORIZED,
    "requires_action": S.REQUIRES_ACTION,
    "failed": S.FAILED,
    "canceled": S.FAILED,
}
# (recovering a failed payment?, forced by an operator?) → the audit action of the resolution.
RESOLUTION_ACTIONS = {
    (False, False): AuditAction.TRANSACTION_RESOLVED,
    (False, True): AuditAction.TRANSACTION_RESOLVED_FORCED,
    (True, False): AuditAction.TRANSACTION_RECOVERED,
    (True, True): AuditAction.TRANSACTION_RECOVERED_FORCED,
}


@dataclass(frozen=True)
class GatewayStatusApplied:
    transaction: Transaction
    previous_status: str

    @property
    def changed(self) -> bool:
        return self.transaction.status != self.previous_status


@transaction.atomic
def transaction_apply_gateway_status(
    *,
    transaction_id: int,
    gateway_status: str | None,
    reference: str | None,
    amount_captured: int,
    actor: Actor,
    target: str | None = None,
    failure_code: str | None = None,
    failure_message: str = "",
    next_action: dict | None = None,
    allow_recovery: bool = False,
    forced_reason: str | None = None,
    details: dict | None = None,
) -> GatewayStatusApplied:
    """Settle a payment from what its gateway says (GatewayPayment statuses: succeeded,
    requires_capture, requires_action, failed, canceled; `processing` changes nothing).
    Used by the stuck-transaction checker, the runbook's manual resolution and inbound
    gateway webhooks, under the transaction's row lock.

    Only forward moves are made (the rules are in the module docstring); anything else leaves
    the payment alone and `GatewayStatusApplied.changed` is False. `target` overrides the status implied by
    `gateway_status` (the runbook's manual resolution). The caller continues the normal
    flow (transaction_continue_after_settlement) once this has committed."""
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    previous = txn.status
    target = target or GATEWAY_TO_FLOWPAY.get(gateway_status or "")
    if target is None:
        return GatewayStatusApplied(transaction=txn, previous_status=previous)
    now = timezone.now()
    reference = reference or txn.gateway_reference
    recovering = allow_recovery and previous == S.FAILED and target == S.COMPLETED
    operation = _settle_forward(
        txn, target=target, gateway_status=gateway_status, reference=reference,
        captured=min(amount_captured or txn.amount, txn.amount), recovering=recovering,
        from_gateway=forced_reason is None,  # a forced resolution only settles processing or failed payments
        failure_code=failure_code, failure_message=failure_message, next_action=next_action, now=now,
    )
    if operation is None:
        return GatewayStatusApplied(transaction=txn, previous_status=previous)  # settled already, or further along
    txn.save()
    transaction_announce(txn)  # the merchant's event, in this database transaction (outbox)
    _attempt_record_settled(txn, operation=operation, gateway_status=gateway_status, reference=reference, now=now)
    audit_record(
        actor=actor,
        action=RESOLUTION_ACTIONS[(bool(recovering), forced_reason is not None)],
        target=txn,
        result="success" if txn.status != S.FAILED else "failure",
        details={
            "status": txn.status, "from_status": previous, "gateway": txn.gateway, "gateway_status": gateway_status,
            "reason": forced_reason, **(details or {}),
        },
    )
    if txn.status == S.COMPLETED:  # captured now (the gateway's view reports no fee)
        transaction_post_capture(txn, gateway_fee=None)
    transaction.on_commit(lambda: payments_processed.labels(gateway=txn.gateway, status=txn.status).inc())
    return GatewayStatusApplied(transaction=txn, previous_status=previous)


def _settle_forward(
    txn: Transaction, *, target: str, gateway_status: str | None, reference: str, captured: int, recovering: bool,
    from_gateway: bool, failure_code: str | None, failure_message: str, next_action: dict | None, now,
) -> str | None:
    """Apply the forward transition the gateway's view implies (see transaction_apply_gateway_status);
    returns the attempt operation it settles, or None when nothing moves."""
    previous = txn.status
    if from_gateway and gateway_status == "canceled" and previous in (S.AUTHORIZED, S.REQUIRES_ACTION):
        txn.cancel(now=now)
        return PaymentAttempt.Operation.VOID
    if from_gateway and gateway_status == "succeeded" and previous == S.AUTHORIZED:
        # Captured at the gateway: our capture's answer was lost, or it was captured there.
        # The authorization's reference stays (PayPal refunds resolve it to the capture).
        txn.capture(amount=captured, now=now)
        return PaymentAttempt.Operation.CAPTURE
    if recovering:
        txn.recover_completed(reference=reference, amount_captured=captured, now=now)
        return PaymentAttempt.Operation.AUTHORIZE
    if not (previous == S.PROCESSING or (from_gateway and previous == S.REQUIRES_ACTION and target != previous)):
        return None
    if previous == S.REQUIRES_ACTION:
        txn.resume_processing()
    if target == S.COMPLETED:
        txn.mark_completed(reference=reference, amount_captured=captured, now=now)
    elif target == S.AUTHORIZED:
        txn.mark_authorized(reference=reference, now=now)
    elif target == S.REQUIRES_ACTION:
        txn.mark_requires_action(reference=reference, next_action=next_action or {"type": "complete_at_gateway"})
    else:
        txn.mark_failed(
            code=failure_code or gateway_status or "resolved_failed",
            message=failure_message or "Resolved from the gateway's records.",
            reference=reference or None, now=now,
        )
    return PaymentAttempt.Operation.AUTHORIZE


def _attempt_record_settled(txn: Transaction, *, operation: str, gateway_status: str | None, reference: str, now) -> None:
    """The settled operation's last attempt, if its outcome was unknown, takes the outcome now known."""
    attempt = txn.attempts.filter(operation=operation).order_by("-number").first()
    if attempt is None or attempt.outcome not in (PaymentAttempt.Outcome.UNKNOWN, PaymentAttempt.Outcome.STARTED):
        return
    outcome = {
        S.COMPLETED: PaymentAttempt.Outcome.SUCCEEDED, S.AUTHORIZED: PaymentAttempt.Outcome.SUCCEEDED,
        S.CANCELED: PaymentAttempt.Outcome.SUCCEEDED, S.REQUIRES_ACTION: PaymentAttempt.Outcome.REQUIRES_ACTION,
    }.get(txn.status, PaymentAttempt.Outcome.DECLINED if gateway_status else PaymentAttempt.Outcome.ERROR)
    # An authorization attempt records the payment's reference; a capture or void keeps its own.
    attempt_reference = reference if operation == PaymentAttempt.Operation.AUTHORIZE else attempt.gateway_reference
    PaymentAttempt.objects.filter(pk=attempt.pk).update(
        outcome=outcome, gateway_reference=attempt_reference or "", finished_at=attempt.finished_at or now,
    )
