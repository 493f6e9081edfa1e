"""Subscriptions: create (with the first invoice charged at once), cancel, pause, resume,
update (payment method, cancel at period end).

The first invoice of a subscription without a trial is charged synchronously, inside the
create request, through the same rebill job machinery as renewals (a job leased by the
request, same charge key, same heartbeat): the merchant learns at once whether the
subscription is `active` (first invoice paid) or `incomplete` (declined: the invoice
follows the dunning schedule, and the subscription is canceled if it is never paid). If
the request dies mid-charge, its lease expires and a rebill worker finishes the job under
the same key, so nothing is charged twice. A create request re-run under its
Idempotency-Key after such a crash (the key's lock timed out) finds the subscription made
under that key (Subscription.idempotency_record) and answers it as it is now: it never
opens a second subscription, invoice or charge, and the first invoice's charge is finished
by the rebill job under its own derived key.
"""

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Merchant
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import ErrorCode, InvalidRequest, InvalidState, NotFound
from core.idempotency import idempotency_created
from core.selectors import Scope
from gateways.router import any_gateway_supports
from payments.models import Customer, PaymentMethod
from payments.selectors import customer_get, payment_method_get_saved
from subscriptions.models import (
    BILLED_STATES,
    Invoice,
    RebillJob,
    RebillJobStatus,
    Subscription,
    SubscriptionStatus,
)
from subscriptions.selectors import plan_get
from subscriptions.services.common import subscription_payload
from subscriptions.services.invoices import invoices_void_open
from subscriptions.services.leasing import LeaseHeartbeat, worker_identity
from subscriptions.services.rebill import rebill_job_run
from subscriptions.services.scheduling import rebill_dispatch
from webhooks.events import EventType
from webhooks.services import outbox_publish

SS, JS = SubscriptionStatus, RebillJobStatus


def _payment_method_resolve(*, scope: Scope, customer: Customer, payment_method: str) -> PaymentMethod | None:
    """A saved method of this customer (pm_…, in the subscription's merchant and mode) or a
    token some enabled gateway accepts."""
    saved = payment_method_get_saved(public_id=payment_method, scope=scope) if payment_method.startswith("pm_") else None
    if saved is None and not any_gateway_supports(payment_method):
        raise InvalidRequest(f"No such payment method: '{payment_method[:60]}'", code=ErrorCode.RESOURCE_MISSING, param="payment_method")
    if saved is not None and saved.customer_id != customer.pk:
        raise InvalidRequest("This payment method belongs to another customer.", param="payment_method")
    return saved


def subscription_create(
    *, merchant: Merchant, customer: str, plan: str, payment_method: str, trial_days: int | None = None,
    metadata: dict | None = None, actor: Actor, livemode: bool = False, idempotency_record_id: int | None = None,
) -> Subscription:
    existing = idempotency_created(Subscription, record_id=idempotency_record_id)
    if existing is not None:
        return Subscription.objects.select_related("plan", "customer").get(pk=existing.pk)
    subscription, job = _subscription_open(
        merchant=merchant, customer_public_id=customer, plan_public_id=plan, payment_method=payment_method,
        trial_days=trial_days, metadata=metadata, actor=actor, livemode=livemode, idempotency_record_id=idempotency_record_id,
    )
    if job is not None:
        owner = job.lease_owner
        with LeaseHeartbeat(owner):
            rebill_job_run(job_id=job.pk, owner=owner, actor=actor)
    return Subscription.objects.select_related("plan", "customer").get(pk=subscription.pk)


@transaction.atomic
def _subscription_open(
    *, merchant: Merchant, customer_public_id: str, plan_public_id: str, payment_method: str, trial_days: int | None,
    metadata: dict | None, actor: Actor, livemode: bool, idempotency_record_id: int | None,
) -> tuple[Subscription, RebillJob | None]:
    # The customer, plan and saved method must be the merchant's, of the subscription's mode.
    scope = Scope(merchant=merchant, livemode=livemode)
    try:
        customer = customer_get(public_id=customer_public_id, scope=scope, param="customer")
        plan_row = plan_get(public_id=plan_public_id, scope=scope, param="plan")
    except NotFound as exc:  # a bad reference in the body is a 400, as at Stripe
        raise InvalidRequest(exc.message, code=exc.code, param=exc.param) from None
    if not plan_row.active:
        raise InvalidRequest(f"Plan {plan_row.public_id} is inactive and takes no new subscriptions.", code=ErrorCode.PLAN_INACTIVE, param="plan")
    saved = _payment_method_resolve(scope=scope, customer=customer, payment_method=payment_method)

    now = timezone.now()
    trial = plan_row.trial_days if trial_days is None else trial_days
    common = dict(
        merchant=merchant, customer=customer, plan=plan_row, payment_method=payment_method, saved_payment_method=saved,
        livemode=livemode, metadata=metadata or {}, idempotency_record_id=idempotency_record_id,
    )
    if trial > 0:
        trial_end = now + dt.timedelta(days=trial)
        subscription = Subscription(
            **common, status=SS.TRIALING, trial_start=now, trial_end=trial_end, billing_anchor=trial_end,
            current_period_start=now, current_period_end=trial_end, next_period_index=0, next_billing_at=trial_end,
        )
        subscription.save()
        audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_CREATE, target=subscription,
                     details={"plan": plan_row.public_id, "status": subscription.status, "trial_end": trial_end.isoformat()})
        return subscription, None

    subscription = Subscription(**common, status=SS.INCOMPLETE, billing_anchor=now,
                                current_period_start=now, current_period_end=now)
    start, end = subscription.advance_period()
    subscription.save()
    audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_CREATE, target=subscription,
                 details={"plan": plan_row.public_id, "status": subscription.status})
    invoice = Invoice(
        merchant=merchant, subscription=subscription, customer=customer, livemode=livemode, amount=plan_row.amount,
        currency=plan_row.currency, period_start=start, period_end=end,
    )
    invoice.save()
    invoice.finalize(now=now)
    invoice.save()
    audit_record(actor=actor, action=AuditAction.INVOICE_OPEN, target=invoice,
                 details={"subscription": subscription.public_id, "amount": invoice.amount, "currency": invoice.currency,
                          "period_start": start.isoformat()})
    job = RebillJob(merchant=merchant, subscription=subscription, invoice=invoice, period_start=start,
                    queue=plan_row.queue, status=JS.QUEUED, run_at=now)
    job.lease(owner=worker_identity("api"), now=now, expires_at=now + dt.timedelta(seconds=settings.FLOWPAY_REBILL_LEASE_SECONDS))
    job.save()
    return subscription, job


def _locked(subscription_id: int) -> Subscription:
    return Subscription.objects.select_for_update(of=("self",)).select_related("plan").get(pk=subscription_id)


@transaction.atomic
def subscription_cancel(*, subscription_id: int, at_period_end: bool, actor: Actor) -> Subscription:
    subscription = _locked(subscription_id)
    now = timezone.now()
    if subscription.status == SS.CANCELED:
        raise InvalidState(f"Subscription {subscription.public_id} is already canceled.")
    if at_period_end:
        if subscription.status not in BILLED_STATES:
            raise InvalidState(
                f"A {subscription.status} subscription has no period end to cancel at: cancel it now instead."
            )
        if not subscription.cancel_at_period_end:
            subscription.cancel_at_period_end = True
            subscription.canceled_at = now
            subscription.save()
            audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_CANCEL_AT_PERIOD_END, target=subscription,
                         details={"at": subscription.current_period_end.isoformat()})
        return subscription
    previous = subscription.status
    subscription.cancel(now=now, reason="requested")
    subscription.save()
    audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_CANCELED, target=subscription, details={"from": previous, "reason": "requested"})
    outbox_publish(merchant_id=subscription.merchant_id, livemode=subscription.livemode,
                   event_type=EventType.SUBSCRIPTION_CANCELED, payload=subscription_payload(subscription))
    invoices_void_open(subscription=subscription, now=now, actor=actor)
    return subscription


@transaction.atomic
def subscription_pause(*, subscription_id: int, actor: Actor) -> Subscription:
    subscription = _locked(subscription_id)
    if subscription.status != SS.ACTIVE:
        raise InvalidState(f"Only active subscriptions can be paused; {subscription.public_id} is {subscription.status}.")
    subscription.pause(now=timezone.now())
    subscription.save()
    audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_PAUSED, target=subscription)
    return subscription


@transaction.atomic
def subscription_resume(*, subscription_id: int, actor: Actor) -> Subscription:
    subscription = _locked(subscription_id)
    if subscription.status != SS.PAUSED:
        raise InvalidState(f"Only paused subscriptions can be resumed; {subscription.public_id} is {subscription.status}.")
    subscription.resume(now=timezone.now())
    subscription.save()
    audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_RESUMED, target=subscription,
                 details={"next_billing_at": subscription.next_billing_at.isoformat() if subscription.next_billing_at else None})
    return subscription


def subscription_update(
    *, subscription_id: int, payment_method: str | None = None, cancel_at_period_end: bool | None = None, actor: Actor
) -> Subscription:
    subscription, retried = _subscription_update(
        subscription_id=subscription_id, payment_method=payment_method, cancel_at_period_end=cancel_at_period_end, actor=actor
    )
    if retried:
        transaction.on_commit(rebill_dispatch)
    return subscription


@transaction.atomic
def _subscription_update(
    *, subscription_id: int, payment_method: str | None, cancel_at_period_end: bool | None, actor: Actor
) -> tuple[Subscription, int]:
    subscription = _locked(subscription_id)
    if subscription.status == SS.CANCELED:
        raise InvalidState(f"Subscription {subscription.public_id} is canceled.")
    now = timezone.now()
    retried = 0
    changes: dict = {}
    if payment_method is not None and payment_method != subscription.payment_method:
        scope = Scope(merchant=subscription.merchant, livemode=subscription.livemode)
        saved = _payment_method_resolve(scope=scope, customer=subscription.customer, payment_method=payment_method)
        subscription.payment_method, subscription.saved_payment_method = payment_method, saved
        changes["payment_method"] = payment_method
        # Invoices waiting after a hard decline are retried at once with the new method.
        jobs = RebillJob.objects.select_for_update().filter(
            subscription=subscription, status=JS.FAILED, run_at__isnull=False, invoice__status="open",
        ).exclude(invoice__hard_declined_payment_method="")
        for job in jobs:
            job.run_at = now
            job.retry()
            job.save()
            audit_record(actor=actor, action=AuditAction.REBILL_JOB_RETRY, target=job, details={"reason": "payment_method_changed"})
            retried += 1
    if cancel_at_period_end is not None and cancel_at_period_end != subscription.cancel_at_period_end:
        if subscription.status not in BILLED_STATES:
            raise InvalidState(f"A {subscription.status} subscription has no period end to cancel at.")
        subscription.cancel_at_period_end = cancel_at_period_end
        subscription.canceled_at = now if cancel_at_period_end else None
        changes["cancel_at_period_end"] = cancel_at_period_end
    if changes:
        subscription.save()
        audit_record(actor=actor, action=AuditAction.SUBSCRIPTION_UPDATE, target=subscription, details=changes)
    return subscription, retried
