"""The timeline of one object of a dashboard list: everything that happened to it, oldest
first, on one page: its creation, gateway attempts, state transitions (every transition is
audited, so the audit entries are the transitions), refunds, disputes, merchant webhook
deliveries and inbound gateway events.

A constant number of queries whatever the object holds: one per kind of record, each over
all the ids the object stands for (a payment's own and those of its refunds and
chargebacks, a subscription's and its invoices' and jobs')."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.admin.utils import unquote
from django.db.models import Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse

from audit.models import AuditEntry
from core.money import format_minor_units
from gateway_events.models import InboundEvent
from ledger.models import Payout
from payments.models import Transaction
from refunds.models import Chargeback, Refund
from subscriptions.models import Invoice, RebillJob, Subscription
from webhooks.models import WebhookDelivery

# The rows shown per kind: a page, not a dump; the audit log browser has the rest.
ROWS_PER_KIND = 500


@dataclass(frozen=True)
class TimelineEvent:
    at: dt.datetime
    kind: str  # created, attempt, transition, refund, dispute, webhook, gateway_event
    title: str
    detail: str = ""
    subject: str = ""  # the public id it is about (the object's own, or a refund's, an invoice's…)


@dataclass
class _Scope:
    """What the timeline reads: the ids the object stands for and its own rows."""

    ids: list[str]
    merchant_id: int | None
    since: dt.datetime
    gateway_references: list[str]
    events: list[TimelineEvent]


def _created(obj, label: str) -> TimelineEvent:
    amount = getattr(obj, "amount", None)
    currency = getattr(obj, "currency", None)
    money = f" {format_minor_units(amount, currency)}" if amount is not None and currency else ""
    return TimelineEvent(at=obj.created_at, kind="created", title=f"{label} created{money}", subject=obj.public_id)


def _transaction_scope(txn: Transaction) -> _Scope:
    events = [_created(txn, "Payment")]
    for attempt in txn.attempts.order_by("number")[:ROWS_PER_KIND]:
        outcome = attempt.outcome + (f" ({attempt.error_code})" if attempt.error_code else "")
        events.append(TimelineEvent(
            at=attempt.started_at, kind="attempt",
            title=f"Attempt {attempt.number}: {attempt.operation} on {attempt.gateway}, {outcome}",
            detail=f"{format_minor_units(attempt.amount, txn.currency)}; {attempt.latency_ms or '-'} ms; "
                   f"reference {attempt.gateway_reference or '-'}",
            subject=txn.public_id,
        ))
    ids, references = [txn.public_id], [txn.gateway_reference] if txn.gateway_reference else []
    for refund in txn.refunds.order_by("created_at")[:ROWS_PER_KIND]:
        ids.append(refund.public_id)
        references += [refund.gateway_reference] if refund.gateway_reference else []
        events.append(TimelineEvent(
            at=refund.created_at, kind="refund",
            title=f"Refund {refund.public_id}: {format_minor_units(refund.amount, refund.currency)}, now {refund.status}",
            detail=refund.reason, subject=refund.public_id,
        ))
    for chargeback in txn.chargebacks.order_by("created_at")[:ROWS_PER_KIND]:
        ids.append(chargeback.public_id)
        events.append(TimelineEvent(
            at=chargeback.created_at, kind="dispute",
            title=f"Chargeback {chargeback.public_id} ({chargeback.chargeback_reference}): "
                  f"{format_minor_units(chargeback.amount, chargeback.currency)}, now {chargeback.status}",
            detail=f"evidence due {chargeback.evidence_due_by:%Y-%m-%d %H:%M} UTC; {chargeback.reason}",
            subject=chargeback.public_id,
        ))
    return _Scope(ids=ids, merchant_id=txn.merchant_id, since=txn.created_at, gateway_references=references, events=events)


def _single_scope(obj, label: str, *, references: list[str] | None = None) -> _Scope:
    return _Scope(ids=[obj.public_id], merchant_id=obj.merchant_id, since=obj.created_at,
                  gateway_references=[r for r in references or [] if r], events=[_created(obj, label)])


def _subscription_scope(subscription: Subscription) -> _Scope:
    scope = _single_scope(subscription, "Subscription")
    for invoice in subscription.invoices.order_by("period_start")[:ROWS_PER_KIND]:
        scope.ids.append(invoice.public_id)
        scope.events.append(TimelineEvent(
            at=invoice.created_at, kind="invoice",
            title=f"Invoice {invoice.public_id}: {format_minor_units(invoice.amount, invoice.currency)}, now {invoice.status}",
            detail=f"period {invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d}", subject=invoice.public_id,
        ))
    scope.ids += list(subscription.rebill_jobs.values_list("public_id", flat=True)[:ROWS_PER_KIND])
    return scope


def _invoice_scope(invoice: Invoice) -> _Scope:
    scope = _single_scope(invoice, "Invoice")
    for charge in invoice.charges.select_related("transaction").order_by("number")[:ROWS_PER_KIND]:
        txn = charge.transaction.public_id if charge.transaction else "-"
        scope.events.append(TimelineEvent(
            at=charge.created_at, kind="attempt", title=f"Charge {charge.number}: {charge.outcome}",
            detail=f"payment {txn}; {charge.failure_code or ''}", subject=invoice.public_id,
        ))
    scope.ids += list(RebillJob.objects.filter(invoice=invoice).values_list("public_id", flat=True))
    return scope


def _scope_of(obj) -> _Scope:
    if isinstance(obj, Transaction):
        return _transaction_scope(obj)
    if isinstance(obj, Refund):
        return _single_scope(obj, "Refund", references=[obj.gateway_reference])
    if isinstance(obj, Chargeback):
        return _single_scope(obj, "Chargeback", references=[obj.gateway_reference])
    if isinstance(obj, Subscription):
        return _subscription_scope(obj)
    if isinstance(obj, Invoice):
        return _invoice_scope(obj)
    if isinstance(obj, Payout):
        return _single_scope(obj, "Payout", references=[obj.gateway_reference])
    raise TypeError(f"no timeline for {type(obj).__name__}")


def _audit_events(scope: _Scope) -> list[TimelineEvent]:
    entries = (AuditEntry.objects.filter(object_id__in=scope.ids).order_by("occurred_at", "id")
               .values_list("occurred_at", "action", "actor_type", "actor_id", "result", "object_id", "details")
               [:ROWS_PER_KIND])
    return [
        TimelineEvent(at=at, kind="transition", title=f"{action} by {actor_type}:{actor_id} ({result})",
                      detail=_details_text(details), subject=object_id)
        for at, action, actor_type, actor_id, result, object_id, details in entries
    ]


def _details_text(details: dict) -> str:
    return "; ".join(f"{key}: {value}" for key, value in sorted((details or {}).items()))[:500]


def _webhook_events(scope: _Scope) -> list[TimelineEvent]:
    if scope.merchant_id is None:
        return []
    deliveries = (WebhookDelivery.objects
                  .filter(event__merchant_id=scope.merchant_id, event__created_at__gte=scope.since,
                          event__payload__id__in=scope.ids)
                  .select_related("event", "endpoint").order_by("created_at", "id")[:ROWS_PER_KIND])
    return [
        TimelineEvent(
            at=delivery.created_at, kind="webhook",
            title=f"Webhook {delivery.event.type} to {delivery.endpoint.url}: {delivery.status}",
            detail=f"{delivery.attempts} attempts; last status {delivery.last_status_code or '-'}; {delivery.last_error}",
            subject=str(delivery.event.payload.get("id", "")),
        )
        for delivery in deliveries
    ]


def _gateway_events(scope: _Scope) -> list[TimelineEvent]:
    matches = Q(flowpay_reference__in=scope.ids)
    if scope.gateway_references:
        matches |= Q(object_reference__in=scope.gateway_references)
    rows = InboundEvent.objects.filter(matches, received_at__gte=scope.since).order_by("received_at", "id")[:ROWS_PER_KIND]
    return [
        TimelineEvent(at=row.received_at, kind="gateway_event", title=f"{row.gateway} event {row.type}: {row.status}",
                      detail=f"{row.event_id}; {row.note or row.error[:200]}", subject=row.object_reference)
        for row in rows
    ]


def timeline_events(obj) -> list[TimelineEvent]:
    """Everything about `obj`, oldest first (ties keep the order of creation before effects)."""
    scope = _scope_of(obj)
    events = scope.events + _audit_events(scope) + _webhook_events(scope) + _gateway_events(scope)
    return sorted(events, key=lambda event: event.at)


def timeline_page(request, *, model_admin, object_id: str):
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None or not model_admin.has_view_permission(request, obj):
        raise Http404("No such object.")
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": opts,
        "title": f"Timeline of {obj.public_id}",
        "object": obj,
        "events": timeline_events(obj),
        "change_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]),
    }
    return TemplateResponse(request, "admin/dashboard/timeline.html", context)
