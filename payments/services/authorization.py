"""What a gateway's answer to an authorization makes of a payment: the transaction's
transition from processing, the attempt's outcome and the audit entry that records them
(payments.services.transactions writes them, in the outcome's database transaction). Pure:
no I/O."""

from dataclasses import dataclass

from audit.actions import AuditAction
from gateways.base import ChargeResult, GatewayError, GatewayTimeout, Outcome
from payments.models import PaymentAttempt, Transaction, TransactionStatus

S = TransactionStatus


@dataclass(frozen=True)
class AuthorizationRecorded:
    """What the gateway's answer to an authorization makes of the payment (see
    authorization_apply): the audit entry and whether merchants hear of it."""

    action: AuditAction
    result: str
    details: dict | None
    announce: bool


# The transaction's fields an authorization's outcome changes (the Transaction transitions
# from processing): what _transaction_record_authorization writes.
OUTCOME_FIELDS = ("status", "gateway_reference", "amount_captured", "next_action", "finalized_at", "failure_code", "failure_message")


def authorization_apply(
    *, txn: Transaction, attempt: PaymentAttempt, result: "ChargeResult | GatewayError", now
) -> AuthorizationRecorded:
    """Apply the gateway's answer to the in-memory transaction (its transition from
    processing) and attempt (its outcome). Pure: no I/O."""
    attempt.finished_at, attempt.latency_ms = now, latency_ms(attempt, now)
    if isinstance(result, GatewayTimeout):
        attempt.outcome = PaymentAttempt.Outcome.UNKNOWN
        attempt.error_code, attempt.error_message = result.code, str(result)[:500]
        return AuthorizationRecorded(AuditAction.TRANSACTION_OUTCOME_UNKNOWN, "failure", {"error": result.code}, announce=False)
    if isinstance(result, GatewayError):
        attempt.outcome = PaymentAttempt.Outcome.ERROR
        attempt.error_code, attempt.error_message = result.code, str(result)[:500]
        txn.mark_failed(code=result.code, message=str(result), reference=None, now=now)
        return AuthorizationRecorded(AuditAction.TRANSACTION_FAILED, "failure", {"error": result.code}, announce=True)

    attempt.gateway_reference = result.reference or ""
    if result.outcome == Outcome.SUCCEEDED:
        attempt.outcome = PaymentAttempt.Outcome.SUCCEEDED
        if result.amount_captured:
            txn.mark_completed(reference=result.reference, amount_captured=result.amount_captured, now=now)
            action = AuditAction.TRANSACTION_COMPLETED
        else:
            txn.mark_authorized(reference=result.reference, now=now)
            action = AuditAction.TRANSACTION_AUTHORIZED
    elif result.outcome == Outcome.DECLINED:
        attempt.outcome = PaymentAttempt.Outcome.DECLINED
        attempt.error_code, attempt.error_message = result.decline_code or "card_declined", result.message[:500]
        txn.mark_failed(code=result.decline_code or "card_declined", message=result.message, reference=result.reference, now=now)
        action = AuditAction.TRANSACTION_FAILED
    elif result.outcome == Outcome.REQUIRES_ACTION:
        attempt.outcome = PaymentAttempt.Outcome.REQUIRES_ACTION
        txn.mark_requires_action(reference=result.reference, next_action=result.next_action or {})
        action = AuditAction.TRANSACTION_REQUIRES_ACTION
    else:
        attempt.outcome = PaymentAttempt.Outcome.UNKNOWN
        return AuthorizationRecorded(AuditAction.TRANSACTION_OUTCOME_UNKNOWN, "failure", None, announce=False)
    return AuthorizationRecorded(
        action, "failure" if txn.status == S.FAILED else "success",
        {"gateway": txn.gateway, "reference": txn.gateway_reference, "decline_code": result.decline_code}, announce=True,
    )


def latency_ms(attempt: PaymentAttempt, now) -> int:
    return int((now - attempt.started_at).total_seconds() * 1000)
