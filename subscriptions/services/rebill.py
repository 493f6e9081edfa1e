"""Running one leased rebill job: charge the invoice exactly once, record the outcome, dun.

Request-then-confirm, as for payments: a RebillCharge row (invoice, attempt number, gateway
idempotency key derived from subscription, period and attempt) is committed before the
charge; the charge goes through payments.services.transaction_create (routing, failover,
circuit breakers, audit) outside any database transaction; the outcome is recorded in a
second short transaction that locks subscription → invoice → job → charge (the order every
subscription service uses).

Exactly once, after any crash: a job re-run finds its invoice's pending charge and reuses
its key. The transaction made for it is found through the charge row, the claimed
idempotency record, or (after the 24 h purge of records) the transaction's metadata; a
transaction left `processing` is settled by asking its gateway (stuck-transaction
resolution), never by charging again. Only a charge known to have charged nothing (no
record at the gateway, gateway unavailable, invalid request) lets a new attempt number,
and so a new key, be used.

Dunning: a declined charge moves the subscription to past_due and schedules retries at
FLOWPAY_DUNNING_SCHEDULE_DAYS after the first failure (default 1, 3, 5, 7). A hard decline
(closed account, lost or stolen card, card_declined...) is not retried with the same
payment method: the invoice waits until the end of the dunning window, and is retried at
once if the payment method is changed meanwhile. When no retry is left the invoice becomes
uncollectible and the subscription unpaid or canceled (merchant setting).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import FlowPayError, IdempotencyInFlight
from core.idempotency import idempotency_begin, idempotency_finish
from core.models import IdempotencyRecord
from core.observability.metrics import rebill_job_duration_seconds, rebill_jobs_failed
from payments.models import PaymentAttempt, Transaction, TransactionStatus
from payments.models.transactions import CAPTURED_STATES
from payments.services.stuck import transaction_resolve_stuck
from payments.services.transactions import PaymentInput, transaction_capture, transaction_create
from subscriptions.models import (
    ChargeOutcome,
    DunningFinalAction,
    Invoice,
    InvoiceStatus,
    RebillCharge,
    RebillJob,
    RebillJobStatus,
    Subscription,
    SubscriptionStatus,
)
from subscriptions.services.common import REBILL_ACTOR, dunning_final_action, invoice_payload, subscription_payload
from subscriptions.services.invoices import invoices_void_open
from webhooks.events import EventType
from webhooks.services import outbox_publish

logger = logging.getLogger(__name__)

IS, JS, SS = InvoiceStatus, RebillJobStatus, SubscriptionStatus


class ChargeOutcomeUnknown(Exception):
    """The gateway's answer is unknown and could not be obtained yet: retry the same key later."""


class NothingCharged(Exception):
    """The charge could not be made and provably charged nothing (bad data, no gateway)."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


@dataclass
class _Step:
    outcome: str | None = None  # set when the job is finished without a charge
    charge: RebillCharge | None = None
    recovered: bool = False  # the charge was left pending by an earlier run


def charge_idempotency_key(*, subscription: Subscription, period_start: dt.datetime, attempt: int) -> str:
    return f"{subscription.public_id}:{period_start.astimezone(dt.UTC):%Y%m%dT%H%M%S}:{attempt}"


def rebill_job_run(*, job_id: int, owner: str, actor: Actor = REBILL_ACTOR) -> str:
    """Run one job leased by `owner` to an outcome (paid, declined, uncollectible, skipped,
    error, dead, lease_lost). Never raises: failures become a retry or the dead letter."""
    started = time.perf_counter()
    queue = RebillJob.objects.filter(pk=job_id).values_list("queue", flat=True).first() or "unknown"
    try:
        outcome = _run(job_id=job_id, owner=owner, actor=actor)
    except Exception as exc:  # bugs, bad data, lost gateway answers: retry, then dead-letter
        logger.warning("rebill job failed", exc_info=not isinstance(exc, (ChargeOutcomeUnknown, NothingCharged)),
                       extra={"job_id": job_id, "error": str(exc)[:200]})
        nothing_charged = exc.code if isinstance(exc, NothingCharged) else None
        outcome = _job_error(job_id=job_id, owner=owner, error=f"{type(exc).__name__}: {exc}",
                             nothing_charged_code=nothing_charged, actor=actor)
    rebill_job_duration_seconds.labels(queue=queue, outcome=outcome).observe(time.perf_counter() - started)
    if outcome in ("declined", "uncollectible", "error", "dead"):
        rebill_jobs_failed.labels(queue=queue, reason=outcome).inc()
    return outcome


def _run(*, job_id: int, owner: str, actor: Actor) -> str:
    # At most a few rounds: a recovered charge that turns out to have charged nothing is
    # closed and a new attempt is made at once.
    for _ in range(3):
        step = _charge_begin(job_id=job_id, owner=owner, actor=actor)
        if step.outcome is not None:
            return step.outcome
        charge = step.charge
        txn = _charge_transaction(charge=charge, recovered=step.recovered, actor=actor)
        if txn.status == TransactionStatus.PROCESSING:
            # Outcome unknown (timeout, or a crash of an earlier run): ask the gateway.
            txn = transaction_resolve_stuck(transaction_id=txn.pk, actor=actor)
        if txn.status == TransactionStatus.PROCESSING:
            raise ChargeOutcomeUnknown(f"transaction {txn.public_id}: the gateway's answer is not known yet")
        if txn.status == TransactionStatus.AUTHORIZED:
            # Authorized but not captured (the capture after a resolution failed): capture it
            # now; until that succeeds the invoice is not paid and nothing is charged again.
            try:
                txn = transaction_capture(transaction_id=txn.pk, amount=None, actor=actor)
            except FlowPayError as exc:
                raise ChargeOutcomeUnknown(f"transaction {txn.public_id} is authorized, capture pending: {exc.message}") from exc
        outcome = _charge_finish(charge_id=charge.pk, transaction_id=txn.pk, owner=owner, actor=actor)
        if outcome == "nothing_charged":
            if step.recovered:
                continue
            raise NothingCharged(f"transaction {txn.public_id} failed without a charge: {txn.failure_code}",
                                 code=txn.failure_code or "error")
        return outcome
    raise RuntimeError("rebill job did not settle after 3 rounds")


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- step 1: lock, decide, record the charge attempt -------------------------------------
@transaction.atomic
def _charge_begin(*, job_id: int, owner: str, actor: Actor) -> _Step:
    job = RebillJob.objects.get(pk=job_id)
    subscription = Subscription.objects.select_for_update(of=("self",)).select_related("plan").get(pk=job.subscription_id)
    invoice = Invoice.objects.select_for_update().get(pk=job.invoice_id)
    job = RebillJob.objects.select_for_update().get(pk=job_id)
    if job.status != JS.LEASED or job.lease_owner != owner:
        return _Step(outcome="lease_lost")
    now = timezone.now()
    pending = RebillCharge.objects.filter(invoice=invoice, outcome=ChargeOutcome.PENDING).first()
    if pending is not None:
        return _Step(charge=pending, recovered=True)
    if invoice.status != IS.OPEN:
        return _Step(outcome=_job_close(job=job, outcome=f"skipped:{invoice.status}", now=now, actor=actor))
    if subscription.status == SS.CANCELED:
        invoice.void(now=now)
        invoice.save()
        audit_record(actor=actor, action=AuditAction.INVOICE_VOID, target=invoice, details={"reason": "subscription_canceled"})
        return _Step(outcome=_job_close(job=job, outcome="skipped:canceled", now=now, actor=actor))
    if invoice.hard_declined_payment_method and invoice.hard_declined_payment_method == subscription.payment_method:
        # Hard decline, and the payment method was not changed by the end of the window.
        _dunning_exhausted(subscription=subscription, invoice=invoice, now=now, actor=actor)
        job.mark_failed(now=now, outcome="uncollectible", retry_at=None)
        job.save()
        audit_record(actor=actor, action=AuditAction.REBILL_JOB_FAILED, target=job, result="failure",
                     details={"reason": "hard_decline_not_retried", "invoice": invoice.public_id})
        return _Step(outcome="uncollectible")
    number = invoice.attempt_count + 1
    invoice.attempt_count = number
    invoice.save(update_fields=["attempt_count", "updated_at"])
    charge = RebillCharge.objects.create(
        invoice=invoice, job=job, number=number, payment_method=subscription.payment_method, worker=owner[:200],
        idempotency_key=charge_idempotency_key(subscription=subscription, period_start=invoice.period_start, attempt=number),
    )
    return _Step(charge=charge)


# --- step 2: the charge itself, outside any database transaction -----------------------
def _charge_transaction(*, charge: RebillCharge, recovered: bool, actor: Actor) -> Transaction:
    """The transaction of this charge attempt: the one made before (crash re-run) or a new one."""
    if charge.transaction_id is not None:
        return Transaction.objects.get(pk=charge.transaction_id)
    invoice = Invoice.objects.select_related("subscription", "customer", "merchant").get(pk=charge.invoice_id)
    subscription = invoice.subscription
    if recovered:
        # Durable fallback, independent of the idempotency-record purge.
        found = Transaction.objects.filter(merchant_id=invoice.merchant_id, metadata__rebill_charge=charge.idempotency_key).first()
        if found is not None:
            _charge_link(charge=charge, txn=found)
            return found
        if charge.payment_method != subscription.payment_method:
            # Nothing was sent under this key yet: use the subscription's current method.
            RebillCharge.objects.filter(pk=charge.pk).update(payment_method=subscription.payment_method)
    record = _idempotency_claim(charge=charge, invoice=invoice)
    found = Transaction.objects.filter(idempotency_record=record).first()
    if found is not None:
        _charge_link(charge=charge, txn=found)
        return found
    payment = PaymentInput(
        amount=invoice.amount, currency=invoice.currency, payment_method=subscription.payment_method,
        customer=invoice.customer.public_id, description=f"Invoice {invoice.public_id}",
        metadata={"rebill_charge": charge.idempotency_key, "invoice": invoice.public_id, "subscription": subscription.public_id},
    )
    try:
        txn = transaction_create(
            merchant=invoice.merchant, payment=payment, actor=actor, livemode=subscription.livemode,
            idempotency_record_id=record.pk,
        )
    except FlowPayError as exc:  # unknown payment method, no gateway available, ...
        txn = Transaction.objects.filter(idempotency_record=record).first()
        if txn is None:
            idempotency_finish(record=record, status=400, body=None)  # release: nothing was created
            raise NothingCharged(f"{exc.code}: {exc.message}", code=exc.code) from exc
    _charge_link(charge=charge, txn=txn)
    idempotency_finish(record=record, status=201, body={"transaction": txn.public_id})
    return txn


def _idempotency_claim(*, charge: RebillCharge, invoice: Invoice) -> IdempotencyRecord:
    """Claim the idempotency record of this charge attempt, or find the one an earlier run
    of the job claimed (in flight or completed): either way the same record, so
    transaction_create finds the transaction made under it instead of charging again."""
    scope, key = f"rebill:{invoice.merchant_id}", charge.idempotency_key
    fingerprint = hashlib.sha256(f"{invoice.public_id}:{invoice.amount}:{invoice.currency}:{charge.number}".encode()).hexdigest()
    try:
        outcome = idempotency_begin(scope=scope, key=key, method="REBILL", path=f"/rebill/{invoice.public_id}", fingerprint=fingerprint)
    except IdempotencyInFlight:
        outcome = None
    if isinstance(outcome, IdempotencyRecord):
        return outcome
    record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
    return record if record is not None else _idempotency_claim(charge=charge, invoice=invoice)


def _charge_link(*, charge: RebillCharge, txn: Transaction) -> None:
    RebillCharge.objects.filter(pk=charge.pk, transaction__isnull=True).update(transaction=txn)
    charge.transaction_id = txn.pk


# --- step 3: record the outcome -------------------------------------------------------
def _declined(txn: Transaction) -> bool:
    attempt = txn.attempts.filter(operation=PaymentAttempt.Operation.AUTHORIZE).order_by("-number").first()
    return attempt is not None and attempt.outcome == PaymentAttempt.Outcome.DECLINED


@transaction.atomic
def _charge_finish(*, charge_id: int, transaction_id: int, owner: str, actor: Actor) -> str:
    charge = RebillCharge.objects.get(pk=charge_id)
    subscription = Subscription.objects.select_for_update(of=("self",)).select_related("plan").get(pk=charge.invoice.subscription_id)
    invoice = Invoice.objects.select_for_update().get(pk=charge.invoice_id)
    job = RebillJob.objects.select_for_update().get(pk=charge.job_id)
    charge = RebillCharge.objects.select_for_update().get(pk=charge_id)
    if charge.outcome != ChargeOutcome.PENDING:
        return "already_recorded"
    txn = Transaction.objects.get(pk=transaction_id)
    now = timezone.now()
    charge.transaction_id = txn.pk
    charge.finished_at = now
    own_lease = job.status == JS.LEASED and job.lease_owner == owner

    if txn.status in CAPTURED_STATES:  # an authorization alone is not money collected
        charge.outcome = ChargeOutcome.SUCCEEDED
        charge.save()
        _invoice_paid(subscription=subscription, invoice=invoice, txn=txn, now=now, actor=actor)
        if job.status == JS.LEASED:
            _job_close(job=job, outcome="paid", now=now, actor=actor)
        return "paid"

    if txn.status == TransactionStatus.REQUIRES_ACTION:
        code, message = "authentication_required", "The card needs the customer's authentication (off-session charge)."
    elif txn.status == TransactionStatus.FAILED and _declined(txn):
        code, message = txn.failure_code or "card_declined", txn.failure_message
    else:
        # No decline: the gateway never charged (unavailable, no record, invalid request).
        charge.outcome, charge.failure_code = ChargeOutcome.ERROR, (txn.failure_code or "error")[:64]
        charge.save()
        return "nothing_charged"

    charge.outcome, charge.failure_code = ChargeOutcome.DECLINED, code[:64]
    charge.save()
    if invoice.status == IS.OPEN and subscription.status == SS.CANCELED:
        invoice.void(now=now)
        invoice.save()
        audit_record(actor=actor, action=AuditAction.INVOICE_VOID, target=invoice, details={"reason": "subscription_canceled"})
    if invoice.status != IS.OPEN:
        if job.status == JS.LEASED:
            _job_close(job=job, outcome=f"skipped:{invoice.status}", now=now, actor=actor)
        return "skipped"
    outcome = _dunning_record_decline(
        subscription=subscription, invoice=invoice, charge=charge, code=code, message=message, now=now, actor=actor
    )
    if own_lease or job.status == JS.LEASED:
        retry_at = invoice.next_attempt_at if invoice.status == IS.OPEN else None
        job.mark_failed(now=now, outcome=outcome, retry_at=retry_at)
        job.save()
        audit_record(actor=actor, action=AuditAction.REBILL_JOB_FAILED, target=job, result="failure",
                     details={"invoice": invoice.public_id, "decline_code": code, "retry_at": _iso(retry_at)})
    return outcome


def _invoice_paid(*, subscription: Subscription, invoice: Invoice, txn: Transaction, now: dt.datetime, actor: Actor) -> None:
    if invoice.status != IS.OPEN:
        # Voided or given up meanwhile, yet the money was taken: keep the record, flag it.
        logger.error("rebill charge succeeded on a %s invoice", invoice.status, extra={"invoice": invoice.public_id})
        audit_record(actor=actor, action=AuditAction.INVOICE_PAID_AFTER_CLOSE, target=invoice, result="failure",
                     details={"transaction": txn.public_id, "status": invoice.status})
        return
    invoice.mark_paid(transaction_id=txn.pk, now=now)
    invoice.save()
    audit_record(actor=actor, action=AuditAction.INVOICE_PAID, target=invoice,
                 details={"transaction": txn.public_id, "amount": invoice.amount, "attempt": invoice.attempt_count})
    outbox_publish(merchant_id=invoice.merchant_id, livemode=invoice.livemode,
                   event_type=EventType.INVOICE_PAID, payload=invoice_payload(invoice))
    if subscription.status in (SS.INCOMPLETE, SS.PAST_DUE):
        previous = subscription.status
        subscription.mark_paid()
        subscription.save()
        audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_ACTIVE, target=subscription,
                     details={"from": previous, "invoice": invoice.public_id})


def _dunning_record_decline(
    *, subscription: Subscription, invoice: Invoice, charge: RebillCharge, code: str, message: str, now: dt.datetime, actor: Actor
) -> str:
    schedule = sorted(settings.FLOWPAY_DUNNING_SCHEDULE_DAYS)
    hard = code in settings.FLOWPAY_DUNNING_HARD_DECLINE_CODES
    first_failed_at = invoice.first_failed_at or now
    failures = invoice.payment_failures + 1
    if hard:
        # Not retried with the same payment method: wait for the end of the dunning window
        # (or a payment method change, which retries at once).
        window_end = first_failed_at + dt.timedelta(days=schedule[-1])
        retry_at = window_end if window_end > now else None
    else:
        retry_at = first_failed_at + dt.timedelta(days=schedule[failures - 1]) if failures <= len(schedule) else None
    invoice.record_payment_failure(
        code=code, message=message or "", now=now, next_attempt_at=retry_at,
        hard_payment_method=charge.payment_method if hard else "",
    )
    invoice.save()
    audit_record(actor=actor, action=AuditAction.INVOICE_PAYMENT_FAILED, target=invoice, result="failure",
                 details={"decline_code": code, "hard_decline": hard, "failures": invoice.payment_failures,
                          "next_attempt_at": _iso(retry_at), "transaction": charge.transaction.public_id if charge.transaction_id else None})
    outbox_publish(merchant_id=invoice.merchant_id, livemode=invoice.livemode,
                   event_type=EventType.INVOICE_PAYMENT_FAILED, payload=invoice_payload(invoice))
    if subscription.status == SS.ACTIVE:
        subscription.mark_past_due()
        subscription.save()
        audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_PAST_DUE, target=subscription, result="failure",
                     details={"invoice": invoice.public_id, "decline_code": code})
        outbox_publish(merchant_id=subscription.merchant_id, livemode=subscription.livemode,
                       event_type=EventType.SUBSCRIPTION_PAST_DUE, payload=subscription_payload(subscription))
    if retry_at is None:
        _dunning_exhausted(subscription=subscription, invoice=invoice, now=now, actor=actor)
        return "uncollectible"
    return "declined"


def _dunning_exhausted(*, subscription: Subscription, invoice: Invoice, now: dt.datetime, actor: Actor) -> None:
    """The last retry failed: the invoice is uncollectible; the subscription becomes unpaid
    or canceled (merchant setting; a never-paid `incomplete` one is canceled)."""
    invoice.mark_uncollectible(now=now)
    invoice.save()
    audit_record(actor=actor, action=AuditAction.INVOICE_UNCOLLECTIBLE, target=invoice, result="failure",
                 details={"failures": invoice.payment_failures, "last_failure": invoice.last_failure_code})
    if subscription.status == SS.PAST_DUE and dunning_final_action(merchant_id=subscription.merchant_id) == DunningFinalAction.UNPAID:
        subscription.mark_unpaid(now=now)
        subscription.save()
        audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_UNPAID, target=subscription, result="failure",
                     details={"invoice": invoice.public_id})
    elif subscription.status in (SS.PAST_DUE, SS.INCOMPLETE):
        reason = "incomplete_expired" if subscription.status == SS.INCOMPLETE else "dunning_exhausted"
        subscription.cancel(now=now, reason=reason)
        subscription.save()
        audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_CANCELED, target=subscription, result="failure",
                     details={"invoice": invoice.public_id, "reason": reason})
        outbox_publish(merchant_id=subscription.merchant_id, livemode=subscription.livemode,
                       event_type=EventType.SUBSCRIPTION_CANCELED, payload=subscription_payload(subscription))
        invoices_void_open(subscription=subscription, now=now, actor=actor)


def _job_close(*, job: RebillJob, outcome: str, now: dt.datetime, actor: Actor) -> str:
    job.mark_succeeded(now=now, outcome=outcome)
    job.save()
    audit_record(actor=actor, action=AuditAction.REBILL_JOB_SUCCEEDED, target=job, details={"outcome": outcome})
    return "paid" if outcome == "paid" else "skipped"


def _error_retry_delay(error_count: int) -> dt.timedelta:
    """Backoff after the n-th non-payment failure: FLOWPAY_REBILL_RETRY_SECONDS * 2^(n-1), at most an hour."""
    return dt.timedelta(seconds=min(3600.0, settings.FLOWPAY_REBILL_RETRY_SECONDS * 2 ** max(0, error_count - 1)))


@transaction.atomic
def _job_error(*, job_id: int, owner: str, error: str, nothing_charged_code: str | None, actor: Actor) -> str:
    """A non-payment failure: retry later with backoff, or dead-letter after
    FLOWPAY_REBILL_MAX_ATTEMPTS. A pending charge is closed only when it provably charged
    nothing; otherwise it stays pending and the next run settles it under the same key."""
    job = RebillJob.objects.select_for_update().get(pk=job_id)
    # A run whose lease was reaped must touch nothing: the job's pending charge may now be
    # another worker's, still at the gateway.
    if job.status != JS.LEASED or job.lease_owner != owner:
        return "lease_lost"
    if nothing_charged_code:
        RebillCharge.objects.filter(invoice_id=job.invoice_id, outcome=ChargeOutcome.PENDING).update(
            outcome=ChargeOutcome.ERROR, failure_code=nothing_charged_code[:64], finished_at=timezone.now()
        )
    now = timezone.now()
    if job.error_count + 1 >= settings.FLOWPAY_REBILL_MAX_ATTEMPTS:
        job.mark_dead(error=error, now=now)
        job.save()
        audit_record(actor=actor, action=AuditAction.REBILL_JOB_DEAD, target=job, result="failure",
                     details={"error": error[:500], "errors": job.error_count})
        logger.error("rebill job dead-lettered", extra={"job": job.public_id, "error": error[:500]})
        return "dead"
    job.requeue_after_error(error=error, run_at=now + _error_retry_delay(job.error_count + 1))
    job.save()
    audit_record(actor=actor, action=AuditAction.REBILL_JOB_RETRY_SCHEDULED, target=job, result="failure",
                 details={"error": error[:500], "errors": job.error_count, "run_at": _iso(job.run_at)})
    return "error"
