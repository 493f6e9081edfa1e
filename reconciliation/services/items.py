"""The resolution workflow of a reconciliation item: investigate, resolve, ignore, and the
four-eyes ledger adjustment (request, then approve or reject by a second person).

Rules: finance or admin staff only (reconciliation.resolve); every decision has a reason and
is audited with its actor in the same database transaction; the item's row is locked for
the decision (two people deciding at once: one wins, the other gets invalid_state).
- create_local_record: only a `missing_locally` charge; records the gateway's payment in
  FlowPay (payments.services.recorded) for the merchant named, then resolves the item.
- ledger_adjustment: recorded as a request (the item is `investigating` with a pending
  resolution); a finance or admin user other than the requester approves it, which posts the
  difference to the ledger (reconciliation.ledger_link.post_adjustment) and resolves the
  item; the database refuses an approver who is the requester.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.errors import InvalidRequest, InvalidState, NotFound, PermissionDenied
from core.permissions import Capability, roles_can
from payments.services.recorded import transaction_record_from_gateway
from reconciliation.ledger_link import post_adjustment
from reconciliation.models import Category, ReconciliationItem, Resolution

REASON_MAX_LENGTH = 500


def _check_staff(actor: Actor) -> None:
    if actor.type != ActorType.STAFF or not roles_can(actor.roles, Capability.RECONCILIATION_RESOLVE):
        raise PermissionDenied("Resolving reconciliation items needs the finance or admin role.")


def _reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidRequest("A reason is required.", param="reason")
    if len(reason) > REASON_MAX_LENGTH or "\x00" in reason:
        raise InvalidRequest(f"The reason must be text of at most {REASON_MAX_LENGTH} characters.", param="reason")
    return reason


def _lock(item_id: int) -> ReconciliationItem:
    item = ReconciliationItem.objects.select_for_update().filter(pk=item_id).first()
    if item is None:
        raise NotFound(f"No such reconciliation item: {item_id}")
    return item


def _user(actor: Actor):
    return get_user_model().objects.get(pk=actor.user_id)


def _audit(actor: Actor, action: AuditAction, item: ReconciliationItem, **details) -> None:
    audit_record(actor=actor, action=action, target=item, merchant_id=item.merchant_id, details={
        "category": item.category, "gateway": item.gateway, "local_reference": item.local_reference,
        "gateway_reference": item.gateway_reference, **details,
    })


@transaction.atomic
def reconciliation_item_investigate(*, item_id: int, actor: Actor, note: str = "") -> ReconciliationItem:
    _check_staff(actor)
    item = _lock(item_id)
    if not can_proceed(item.investigate):
        raise InvalidState(f"Cannot investigate a {item.state} item: only open items can be.")
    item.investigate(note=note or "")
    item.save()
    _audit(actor, AuditAction.RECONCILIATION_ITEM_INVESTIGATE, item, note=note)
    return item


@transaction.atomic
def reconciliation_item_resolve(
    *, item_id: int, resolution: str, reason: str, actor: Actor, merchant_public_id: str | None = None,
) -> ReconciliationItem:
    """Resolve (or ignore) an item; a ledger adjustment is only requested here (four-eyes)."""
    _check_staff(actor)
    reason = _reason(reason)
    if resolution not in Resolution.values:
        raise InvalidRequest(f"No such resolution: {resolution!r}.", param="resolution")
    item = _lock(item_id)
    now, user = timezone.now(), _user(actor)
    if resolution == Resolution.LEDGER_ADJUSTMENT:
        if not can_proceed(item.request_ledger_adjustment):
            raise InvalidState(f"Cannot request a ledger adjustment on a {item.state} item"
                               + (" that already has one pending." if item.pending_resolution else "."))
        item.request_ledger_adjustment(reason=reason, user=user, now=now)
        item.save()
        _audit(actor, AuditAction.RECONCILIATION_ITEM_ADJUSTMENT_REQUEST, item, reason=reason,
               amount=item.amount_difference, currency=item.gateway_currency or item.flowpay_currency)
        return item
    if resolution == Resolution.IGNORE:
        if not can_proceed(item.ignore):
            raise InvalidState(f"Cannot ignore a {item.state} item.")
        item.ignore(reason=reason, user=user, now=now)
        item.save()
        _audit(actor, AuditAction.RECONCILIATION_ITEM_IGNORE, item, reason=reason)
        return item
    if not can_proceed(item.resolve):
        raise InvalidState(f"Cannot resolve a {item.state} item.")
    details: dict = {}
    if resolution == Resolution.CREATE_LOCAL_RECORD:
        details["transaction"] = _record_locally(item, merchant_public_id=merchant_public_id, reason=reason, actor=actor)
    item.resolve(resolution=resolution, reason=reason, user=user, now=now)
    item.save()
    _audit(actor, AuditAction.RECONCILIATION_ITEM_RESOLVE, item, resolution=resolution, reason=reason, **details)
    return item


def _record_locally(item: ReconciliationItem, *, merchant_public_id: str | None, reason: str, actor: Actor) -> str:
    if item.category != Category.MISSING_LOCALLY or item.kind != "charge":
        raise InvalidRequest("create_local_record applies to a charge missing locally; record refunds and disputes "
                             "through their own endpoints.", param="resolution")
    if not merchant_public_id:
        raise InvalidRequest("Name the merchant the payment belongs to (merchant).", param="merchant")
    txn = transaction_record_from_gateway(
        merchant_public_id=merchant_public_id, gateway=item.gateway, reference=item.gateway_reference,
        amount=item.gateway_amount or 0, currency=item.gateway_currency, settled_at=item.last_run.window_start,
        reason=reason, actor=actor,
    )
    item.transaction, item.merchant, item.local_reference = txn, txn.merchant, txn.public_id
    return txn.public_id


@transaction.atomic
def reconciliation_item_approve_adjustment(*, item_id: int, actor: Actor) -> ReconciliationItem:
    """Four-eyes: a second finance or admin user posts the requested ledger adjustment."""
    _check_staff(actor)
    item = _lock(item_id)
    if not can_proceed(item.approve_ledger_adjustment):
        raise InvalidState("This item has no ledger adjustment awaiting approval.")
    if item.requested_by_id == actor.user_id:
        raise PermissionDenied("Four-eyes rule: a ledger adjustment must be approved by someone other than its requester.")
    amount, currency = item.amount_difference, item.gateway_currency or item.flowpay_currency
    ledger_reference = post_adjustment(item=item, amount=amount, currency=currency, requested_by=item.requested_by,
                                       approved_by=_user(actor))
    item.approve_ledger_adjustment(user=_user(actor), ledger_reference=ledger_reference, now=timezone.now())
    item.save()
    _audit(actor, AuditAction.RECONCILIATION_ITEM_ADJUSTMENT_APPROVE, item, amount=amount, currency=currency,
           ledger_reference=ledger_reference, requested_by=item.requested_by.get_username())
    return item


@transaction.atomic
def reconciliation_item_reject_adjustment(*, item_id: int, actor: Actor, reason: str) -> ReconciliationItem:
    _check_staff(actor)
    reason = _reason(reason)
    item = _lock(item_id)
    if not can_proceed(item.reject_ledger_adjustment):
        raise InvalidState("This item has no ledger adjustment awaiting approval.")
    requested_by = item.requested_by.get_username()
    item.reject_ledger_adjustment(reason=reason)
    item.save()
    _audit(actor, AuditAction.RECONCILIATION_ITEM_ADJUSTMENT_REJECT, item, reason=reason, requested_by=requested_by)
    return item
