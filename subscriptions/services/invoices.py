"""Invoice services shared by the subscription lifecycle and the rebill pipeline."""

from __future__ import annotations

import datetime as dt

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from subscriptions.models import ChargeOutcome, Invoice, InvoiceStatus, Subscription

IS = InvoiceStatus


def invoices_void_open(*, subscription: Subscription, now: dt.datetime, actor: Actor, exclude_in_flight: bool = True) -> None:
    """Void a canceled subscription's open invoices, except those with a charge in flight
    (their worker records the charge's outcome; a failed one is voided then)."""
    invoices = Invoice.objects.select_for_update().filter(subscription=subscription, status__in=[IS.DRAFT, IS.OPEN])
    if exclude_in_flight:
        invoices = invoices.exclude(charges__outcome=ChargeOutcome.PENDING)
    for invoice in invoices:
        invoice.void(now=now)
        invoice.save()
        audit_record(actor=actor, action=AuditAction.INVOICE_VOID, target=invoice, details={"reason": "subscription_canceled"})
