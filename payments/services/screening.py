"""Fraud screening in the payment flow: what transaction_create asks of fraud.screening and
how it acts on the answer. Runs after the Idempotency-Key claim and the transaction's
opening, before any gateway call.

- block: the transaction fails with failure_code `fraud_blocked` (402 to the merchant);
  nothing is sent to a gateway; audited `transaction.fraud_blocked` with the rules.
- review: the payment is held: authorized without capture (its capture method becomes
  manual, so no automatic capture — a webhook, the stuck checker — can take it past the
  review), then a review is opened (fraud.reviews approves or rejects it).
- request_3ds: the authorization asks the gateway for 3-D Secure (`requires_action`).
- allow: the payment goes on as it would have.
A decline at the gateway is counted for the declined_charges_* velocity.

Only payments created with a ScreeningContext are screened: the API's (a customer is
paying); subscription renewals charged by the rebill workers are merchant-initiated and
are not. FLOWPAY_FRAUD_SCREENING_ENABLED off screens nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import ErrorCode
from fraud.screening.reviews import review_open
from fraud.screening.screen import Screening, fraud_record_decline, fraud_screen
from fraud.screening.signals import ScreeningRequest
from gateways.base import ChargeResult, GatewayError, Outcome
from payments.models import CaptureMethod, PaymentAttempt, Transaction, TransactionStatus
from payments.selectors import customer_fraud_history
from payments.services.transaction_events import transaction_announce

S = TransactionStatus


@dataclass(frozen=True)
class ScreeningContext:
    """What the payment request says about the paying customer, for screening."""

    email: str | None = None
    client_ip: str | None = None
    billing_country: str | None = None


def transaction_screen(*, txn: Transaction, context: ScreeningContext | None, key_base: str | None,
                       actor: Actor) -> Screening | None:
    """Screen an opened (processing) transaction; None when it is not screened. A payment held
    for review is switched to manual capture here, on `txn` too (the route reads it)."""
    if context is None or not settings.FLOWPAY_FRAUD_SCREENING_ENABLED:
        return None
    customer = txn.customer
    request = ScreeningRequest(
        merchant_id=txn.merchant_id, merchant_public_id=txn.merchant.public_id, livemode=txn.livemode,
        transaction_id=txn.pk, transaction_public_id=txn.public_id, amount=txn.amount, currency=txn.currency,
        gateway=txn.gateway, payment_method_token=txn.payment_method_token,
        # One count per payment request: a retry under the same Idempotency-Key has the same base.
        count_key=key_base or txn.public_id,
        customer_public_id=customer.public_id if customer else None,
        customer_email=customer.email if customer else None,
        email=context.email, client_ip=context.client_ip, billing_country=context.billing_country,
        metadata=txn.metadata,
        customer_history=(lambda: customer_fraud_history(customer=customer, currency=txn.currency,
                                                         exclude_transaction_id=txn.pk)) if customer else None,
    )
    screening = fraud_screen(request=request)
    if screening.held_for_review:
        _transaction_hold_for_review(txn=txn, screening=screening, actor=actor)
    return screening


@transaction.atomic
def _transaction_hold_for_review(*, txn: Transaction, screening: Screening, actor: Actor) -> None:
    locked = Transaction.objects.select_for_update().get(pk=txn.pk)
    if locked.status != S.PROCESSING:
        return
    previous = locked.capture_method
    locked.capture_method = CaptureMethod.MANUAL
    locked.save(update_fields=["capture_method", "updated_at"])
    txn.capture_method = CaptureMethod.MANUAL
    audit_record(actor=actor, action=AuditAction.TRANSACTION_REVIEW_HOLD, target=locked,
                 details={"capture_method_requested": previous, "score": screening.score,
                          "rules": [rule["predicate"] for rule in screening.rules]})


@transaction.atomic
def transaction_fraud_block(*, transaction_id: int, attempt_id: int | None, screening: Screening,
                            actor: Actor) -> Transaction:
    """Fail a transaction screening blocked. Nothing was sent to a gateway: its first attempt,
    recorded with the opening (`attempt_id`), is closed as an error that never reached it."""
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    if txn.status != S.PROCESSING:  # settled meanwhile (never by a gateway: nothing was sent)
        return txn
    if attempt_id is not None:
        PaymentAttempt.objects.filter(pk=attempt_id, outcome=PaymentAttempt.Outcome.STARTED).update(
            outcome=PaymentAttempt.Outcome.ERROR, error_code=ErrorCode.FRAUD_BLOCKED.value, finished_at=timezone.now(),
            error_message="Not sent: fraud screening blocked the payment before the gateway call.",
        )
    txn.mark_failed(code=ErrorCode.FRAUD_BLOCKED, message=screening.block_message(), reference=None, now=timezone.now())
    txn.save()
    audit_record(actor=actor, action=AuditAction.TRANSACTION_FRAUD_BLOCKED, target=txn, result="failure",
                 details={"error": ErrorCode.FRAUD_BLOCKED.value, "score": screening.score, "level": screening.level,
                          "rules": [rule["predicate"] for rule in screening.rules]})
    transaction_announce(txn)
    return txn


def transaction_screening_settle(*, txn: Transaction, screening: Screening | None,
                                 result: ChargeResult | GatewayError | None, actor: Actor) -> Transaction:
    """After the gateway (`result`: its last answer): count a decline; open the review of a
    held payment that was not refused (authorized, awaiting 3-D Secure, or its answer lost)."""
    if screening is None:
        return txn
    if isinstance(result, ChargeResult) and result.outcome == Outcome.DECLINED:
        fraud_record_decline(screening=screening, merchant_id=txn.merchant_id, livemode=txn.livemode)
    if screening.held_for_review and txn.status not in (S.FAILED, S.CANCELED):
        review_open(decision_id=screening.decision_id, actor=actor)
    return txn
