"""The rebill scheduler (beat): invoice due periods, queue dunning retries, reap stale
leases, and dispatch drain messages to the queue of each billing frequency.

Batches, not loops of queries: each round locks up to FLOWPAY_REBILL_BATCH_SIZE due
subscriptions (FOR UPDATE SKIP LOCKED, so two schedulers never bill one subscription), then
writes their invoices and jobs with two INSERT … ON CONFLICT DO NOTHING on the unique keys
(subscription, period_start), advances the subscriptions with one bulk UPDATE and audits
with one bulk INSERT: a constant number of queries per batch, so the cost grows linearly
with the number of due subscriptions. Re-running a round (crash, two beats) creates
nothing twice. A subscription several periods behind is invoiced once per missed period.
"""

import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import InvalidState
from subscriptions.models import (
    BILLED_STATES,
    Invoice,
    InvoiceStatus,
    RebillJob,
    RebillJobStatus,
    Subscription,
    SubscriptionStatus,
)
from subscriptions.services.common import REBILL_ACTOR, audit_bulk, subscription_payload
from webhooks.events import EventType
from webhooks.services import outbox_publish

logger = logging.getLogger(__name__)

IS, JS, SS = InvoiceStatus, RebillJobStatus, SubscriptionStatus
SUBSCRIPTION_BILLING_FIELDS = [
    "status", "current_period_start", "current_period_end", "next_period_index", "next_billing_at",
    "canceled_at", "ended_at", "cancellation_reason", "updated_at",
]


@dataclass
class ScheduleResult:
    invoices_created: int = 0
    subscriptions_canceled: int = 0
    batches: int = 0


def rebill_schedule_due(*, batch_size: int | None = None, max_batches: int = 1000) -> ScheduleResult:
    """Invoice every billed subscription whose next period has started."""
    result = ScheduleResult()
    for _ in range(max_batches):
        created, canceled, seen = _schedule_batch(limit=batch_size or settings.FLOWPAY_REBILL_BATCH_SIZE)
        if not seen:
            break
        result.batches += 1
        result.invoices_created += created
        result.subscriptions_canceled += canceled
    return result


def _end_periods(
    subscriptions: list[Subscription], *, now, audits: list[tuple[AuditAction, object, dict]],
) -> tuple[list[Subscription], list[Subscription]]:
    """Due subscriptions end their period: those set to cancel at its end are canceled, the
    others (a trial ending becomes active) are to be invoiced. Returns (to invoice, canceled)."""
    to_invoice: list[Subscription] = []
    canceled: list[Subscription] = []
    for subscription in subscriptions:
        if subscription.cancel_at_period_end:
            subscription.cancel(now=subscription.next_billing_at or now, reason="cancel_at_period_end")
            canceled.append(subscription)
            audits.append((AuditAction.SUBSCRIPTION_CANCELED, subscription, {"reason": "cancel_at_period_end"}))
        else:
            if subscription.status == SS.TRIALING:
                subscription.end_trial()
                audits.append((AuditAction.SUBSCRIPTION_ACTIVE, subscription, {"from": SS.TRIALING, "reason": "trial_ended"}))
            to_invoice.append(subscription)
        subscription.updated_at = now
    return to_invoice, canceled


@transaction.atomic
def _schedule_batch(*, limit: int) -> tuple[int, int, int]:
    now = timezone.now()
    subscriptions = list(
        Subscription.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("plan")
        .filter(status__in=BILLED_STATES, next_billing_at__lte=now)
        .order_by("next_billing_at", "id")[:limit]
    )
    if not subscriptions:
        return 0, 0, 0
    audits: list[tuple[AuditAction, object, dict]] = []
    to_invoice, canceled = _end_periods(subscriptions, now=now, audits=audits)

    new_invoices = []
    for subscription in to_invoice:
        start, end = subscription.advance_period()
        new_invoices.append(Invoice(
            merchant_id=subscription.merchant_id, subscription=subscription, customer_id=subscription.customer_id,
            livemode=subscription.livemode, amount=subscription.plan.amount, currency=subscription.plan.currency,
            period_start=start, period_end=end,
            status=IS.OPEN, finalized_at=now, next_attempt_at=now,
        ))
    # INSERT … ON CONFLICT DO NOTHING: an invoice that exists already is kept, not duplicated.
    Invoice.objects.bulk_create(new_invoices, ignore_conflicts=True)
    generated = {(inv.subscription_id, inv.period_start): inv.public_id for inv in new_invoices}
    stored = Invoice.objects.filter(
        subscription_id__in=[s.pk for s in to_invoice], period_start__in=[inv.period_start for inv in new_invoices]
    ).only("id", "public_id", "subscription_id", "period_start", "merchant_id", "amount", "currency")
    stored_by_key = {(inv.subscription_id, inv.period_start): inv for inv in stored}
    jobs = []
    created = 0
    by_id = {s.pk: s for s in to_invoice}
    for key, public_id in generated.items():
        invoice = stored_by_key.get(key)
        if invoice is None:
            continue
        subscription = by_id[key[0]]
        if invoice.public_id == public_id:
            created += 1
            audits.append((AuditAction.INVOICE_OPEN, invoice, {
                "subscription": subscription.public_id, "amount": invoice.amount, "currency": invoice.currency,
                "period_start": invoice.period_start.isoformat(),
            }))
        jobs.append(RebillJob(
            merchant_id=subscription.merchant_id, subscription_id=subscription.pk, invoice_id=invoice.pk,
            period_start=invoice.period_start, queue=subscription.plan.queue, status=JS.QUEUED, run_at=now,
        ))
    RebillJob.objects.bulk_create(jobs, ignore_conflicts=True)
    Subscription.objects.bulk_update(subscriptions, SUBSCRIPTION_BILLING_FIELDS)
    audit_bulk(actor=REBILL_ACTOR, entries=audits)
    for subscription in canceled:
        outbox_publish(merchant_id=subscription.merchant_id, livemode=subscription.livemode,
                       event_type=EventType.SUBSCRIPTION_CANCELED, payload=subscription_payload(subscription))
    return created, len(canceled), len(subscriptions)


def rebill_queue_due_retries(*, batch_size: int | None = None) -> int:
    """failed → queued for jobs whose dunning retry time has come."""
    total = 0
    limit = batch_size or settings.FLOWPAY_REBILL_BATCH_SIZE
    while True:
        with transaction.atomic():
            now = timezone.now()
            jobs = list(
                RebillJob.objects.select_for_update(skip_locked=True)
                .filter(status=JS.FAILED, run_at__lte=now)
                .order_by("run_at", "id")[:limit]
            )
            for job in jobs:
                job.retry()
                job.updated_at = now
            RebillJob.objects.bulk_update(jobs, ["status", "updated_at"])
            audit_bulk(actor=REBILL_ACTOR, entries=[(AuditAction.REBILL_JOB_RETRY, job, {"reason": "dunning"}) for job in jobs])
        total += len(jobs)
        if len(jobs) < limit:
            return total


def rebill_reap_stale(*, batch_size: int | None = None) -> int:
    """Re-queue leased jobs whose lease expired (the worker stopped heartbeating: killed,
    frozen or cut off). It counts as a non-payment failure; after
    FLOWPAY_REBILL_MAX_ATTEMPTS the job goes to the dead letter. Re-running the job is safe:
    the charge key is the same, so nothing is charged twice."""
    total = 0
    limit = batch_size or settings.FLOWPAY_REBILL_BATCH_SIZE
    while True:
        with transaction.atomic():
            now = timezone.now()
            jobs = list(
                RebillJob.objects.select_for_update(skip_locked=True)
                .filter(status=JS.LEASED, lease_expires_at__lt=now)
                .order_by("lease_expires_at", "id")[:limit]
            )
            audits = []
            for job in jobs:
                error = f"lease expired: {job.lease_owner} stopped heartbeating (last {job.heartbeat_at:%Y-%m-%dT%H:%M:%S}Z)"
                if job.error_count + 1 >= settings.FLOWPAY_REBILL_MAX_ATTEMPTS:
                    job.mark_dead(error=error, now=now)
                    audits.append((AuditAction.REBILL_JOB_DEAD, job, {"error": error}))
                else:
                    job.requeue_after_error(error=error, run_at=now)
                    audits.append((AuditAction.REBILL_JOB_REAPED, job, {"error": error}))
                job.updated_at = now
            RebillJob.objects.bulk_update(
                jobs, ["status", "lease_owner", "lease_expires_at", "error_count", "last_error", "run_at", "dead_at",
                       "outcome", "updated_at"],
            )
            audit_bulk(actor=REBILL_ACTOR, entries=audits, result="failure")
        total += len(jobs)
        if jobs:
            logger.warning("rebill jobs with stale leases re-queued", extra={"count": len(jobs)})
        if len(jobs) < limit:
            return total


def rebill_dispatch() -> int:
    """Send drain messages for the queued, due jobs: per shard (queue, merchant), one
    message per batch of jobs up to FLOWPAY_REBILL_MAX_PARALLEL_PER_SHARD, to the queue of
    the billing frequency. Extra messages are harmless: a drain of an empty shard returns."""
    # Imported here: subscriptions.tasks imports this module's services for its task bodies.
    from subscriptions.tasks import rebill_drain_task

    shards = (
        RebillJob.objects.filter(status=JS.QUEUED, run_at__lte=timezone.now())
        .values("queue", "merchant_id")
        .annotate(jobs=Count("id"))
        .order_by("queue", "merchant_id")
    )
    sent = 0
    for shard in shards:
        messages = min(math.ceil(shard["jobs"] / settings.FLOWPAY_REBILL_BATCH_SIZE), settings.FLOWPAY_REBILL_MAX_PARALLEL_PER_SHARD)
        for _ in range(messages):
            rebill_drain_task.apply_async(
                kwargs={"queue": shard["queue"], "merchant_id": shard["merchant_id"]},
                queue=settings.FLOWPAY_REBILL_QUEUE_PREFIX + shard["queue"],
            )
            sent += 1
    return sent


@transaction.atomic
def rebill_job_requeue_dead(*, job_id: int, actor: Actor) -> RebillJob:
    """dead → queued, by an operator (list_dead_rebills --requeue, admin)."""
    job = RebillJob.objects.select_for_update().get(pk=job_id)
    if job.status != JS.DEAD:
        raise InvalidState(f"Rebill job {job.public_id} is {job.status}, not dead.")
    job.requeue_dead(now=timezone.now())
    job.save()
    audit_record(actor=actor, action=AuditAction.REBILL_JOB_REQUEUE, target=job, details={"invoice_id": job.invoice_id})
    return job
