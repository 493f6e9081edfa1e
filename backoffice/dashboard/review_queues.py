"""The review queues: what waits for a person's decision, one page, one section per queue.

- reconciliation items open or under investigation: the FlowPay and gateway sides field by
  field, resolve (force match, timing) or ignore with a reason, request a ledger adjustment
  and, four eyes, approve or reject someone else's request (reconciliation services);
- refunds awaiting approval: approve, or reject with a reason (four eyes: refunds services);
- fraud reviews open: approve (capture) or reject (cancel or refund), with a note;
- chargebacks whose evidence is due within FLOWPAY_CHARGEBACK_DUE_SOON_DAYS, nearest first
  (their page has the responses).

Each section shows only to the roles that may read it and each button only to those that may
act (core.permissions); the services check again and write the audit entries their API
endpoints write. Every form carries a one-time token: submitted twice, it acts once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from core.admin import staff_actor, staff_can
from core.errors import FlowPayError
from core.form_tokens import ALREADY_SUBMITTED, form_token_claim, form_token_issue
from core.money import format_minor_units
from core.permissions import Capability
from fraud.models import Review, ReviewStatus
from fraud.reviews.services import review_approve, review_reject
from reconciliation.models import ItemState, ReconciliationItem, Resolution
from reconciliation.services.items import (
    reconciliation_item_approve_adjustment,
    reconciliation_item_reject_adjustment,
    reconciliation_item_resolve,
)
from refunds.models import Chargeback, ChargebackStatus, Refund, RefundStatus
from refunds.services.create import refund_approve, refund_reject

QUEUE_ROWS = 100  # per section; the lists behind the "all" links have the rest

# Which capability reads each section, which one acts on it.
SECTIONS = {
    "reconciliation": (Capability.RECONCILIATION_READ, Capability.RECONCILIATION_RESOLVE),
    "refunds": (Capability.BACKOFFICE_REFUNDS, Capability.REFUND_APPROVE),
    "fraud": (Capability.FRAUD_READ, Capability.FRAUD_REVIEW),
    "chargebacks": (Capability.BACKOFFICE_REFUNDS, None),
}


@dataclass(frozen=True)
class FieldPair:
    name: str
    flowpay: str
    gateway: str

    @property
    def differs(self) -> bool:
        return self.flowpay != self.gateway


def item_field_pairs(item: ReconciliationItem) -> list[FieldPair]:
    """The two sides of a reconciliation item, field by field (amounts in their currency)."""

    def amount(value, currency):
        return "" if value is None else format_minor_units(value, currency or "USD")

    return [
        FieldPair("reference", item.local_reference, item.gateway_reference),
        FieldPair("amount", amount(item.flowpay_amount, item.flowpay_currency), amount(item.gateway_amount, item.gateway_currency)),
        FieldPair("currency", item.flowpay_currency, item.gateway_currency),
        FieldPair("fee", amount(item.flowpay_fee, item.flowpay_currency), amount(item.gateway_fee, item.gateway_currency)),
        *[FieldPair(str(entry.get("field", "")), str(entry.get("flowpay", "")), str(entry.get("gateway", "")))
          for entry in (item.diff or []) if isinstance(entry, dict)],
    ]


def review_queue_rows(request) -> dict:
    """The queues this staff user may read, each at most QUEUE_ROWS rows."""
    queues: dict = {}
    if staff_can(request, SECTIONS["reconciliation"][0]):
        items = (ReconciliationItem.objects.filter(state__in=[ItemState.OPEN, ItemState.INVESTIGATING])
                 .select_related("merchant", "requested_by").order_by("settlement_date", "id")[:QUEUE_ROWS])
        queues["reconciliation"] = [(item, item_field_pairs(item)) for item in items]
    if staff_can(request, SECTIONS["refunds"][0]):
        queues["refunds"] = list(Refund.objects.filter(status=RefundStatus.REQUIRES_APPROVAL)
                                 .select_related("transaction", "merchant", "requested_by_user")
                                 .order_by("created_at", "id")[:QUEUE_ROWS])
    if staff_can(request, SECTIONS["fraud"][0]):
        queues["fraud"] = list(Review.objects.filter(status=ReviewStatus.OPEN)
                               .select_related("transaction", "decision", "merchant").order_by("created_at", "id")[:QUEUE_ROWS])
    if staff_can(request, SECTIONS["chargebacks"][0]):
        due_by = timezone.now() + dt.timedelta(days=settings.FLOWPAY_CHARGEBACK_DUE_SOON_DAYS)
        queues["chargebacks"] = list(Chargeback.objects.filter(status=ChargebackStatus.NEEDS_RESPONSE, evidence_due_by__lte=due_by)
                                     .select_related("transaction", "merchant").order_by("evidence_due_by", "id")[:QUEUE_ROWS])
    return queues


def _reason(request) -> str:
    return (request.POST.get("reason") or "").strip()


def _require_reason(reason: str) -> str:
    if not reason:
        raise ValueError("A reason is required.")
    return reason


# (section, operation) -> what it calls; the actor is the staff user.
OPERATIONS: dict[tuple[str, str], Callable] = {
    ("reconciliation", "force_match"): lambda pk, actor, reason: reconciliation_item_resolve(
        item_id=pk, resolution=Resolution.FORCE_MATCH, reason=reason, actor=actor),
    ("reconciliation", "timing"): lambda pk, actor, reason: reconciliation_item_resolve(
        item_id=pk, resolution=Resolution.TIMING, reason=reason, actor=actor),
    ("reconciliation", "ignore"): lambda pk, actor, reason: reconciliation_item_resolve(
        item_id=pk, resolution=Resolution.IGNORE, reason=reason, actor=actor),
    ("reconciliation", "request_adjustment"): lambda pk, actor, reason: reconciliation_item_resolve(
        item_id=pk, resolution=Resolution.LEDGER_ADJUSTMENT, reason=reason, actor=actor),
    ("reconciliation", "approve_adjustment"): lambda pk, actor, reason: reconciliation_item_approve_adjustment(
        item_id=pk, actor=actor),
    ("reconciliation", "reject_adjustment"): lambda pk, actor, reason: reconciliation_item_reject_adjustment(
        item_id=pk, actor=actor, reason=reason),
    ("refunds", "approve"): lambda pk, actor, reason: refund_approve(refund_id=pk, actor=actor),
    ("refunds", "reject"): lambda pk, actor, reason: refund_reject(refund_id=pk, actor=actor, reason=_require_reason(reason)),
    ("fraud", "approve"): lambda pk, actor, reason: review_approve(review_id=pk, actor=actor, note=reason),
    ("fraud", "reject"): lambda pk, actor, reason: review_reject(review_id=pk, actor=actor, note=_require_reason(reason)),
}


def review_queues_readable(request) -> bool:
    return any(staff_can(request, read) for read, _ in SECTIONS.values())


def review_queues_page(request, admin_site):
    if not review_queues_readable(request):
        raise PermissionDenied
    if request.method == "POST":
        return _decide(request)
    context = {
        **admin_site.each_context(request),
        "title": "Review queues",
        "queues": review_queue_rows(request),
        "may_act": {name: bool(act) and staff_can(request, act) for name, (_, act) in SECTIONS.items()},
        "form_token": form_token_issue(request),
        "due_soon_days": settings.FLOWPAY_CHARGEBACK_DUE_SOON_DAYS,
    }
    return TemplateResponse(request, "admin/dashboard/review_queues.html", context)


def _decide(request):
    back = reverse("admin:dashboard_review_queues")
    section, operation = request.POST.get("queue", ""), request.POST.get("operation", "")
    call = OPERATIONS.get((section, operation))
    if call is None:
        messages.error(request, "Unknown decision: nothing was changed.")
        return HttpResponseRedirect(back)
    acting = SECTIONS[section][1]
    if not staff_can(request, acting):
        raise PermissionDenied
    try:
        pk = int(request.POST.get("id", ""))
    except ValueError:
        messages.error(request, "No row was chosen: nothing was changed.")
        return HttpResponseRedirect(back)
    if not form_token_claim(request):
        messages.warning(request, ALREADY_SUBMITTED)
        return HttpResponseRedirect(back)
    try:
        obj = call(pk, staff_actor(request), _reason(request))
    except ValueError as exc:
        messages.error(request, f"{exc} Nothing was changed.")
    except FlowPayError as exc:
        messages.error(request, exc.message)
    except (ReconciliationItem.DoesNotExist, Refund.DoesNotExist, Review.DoesNotExist):
        messages.error(request, "That row no longer exists: nothing was changed.")
    else:
        messages.success(request, f"{getattr(obj, 'public_id', pk)}: {operation.replace('_', ' ')} done.")
    return HttpResponseRedirect(back)
