"""Chargeback services: record (from staff, a merchant or a gateway dispute event), submit
evidence, accept, record the outcome. Each locks the transaction, then the chargeback.

Funds: a lost or accepted chargeback withdraws its amount (recorded on the chargeback and
added to Transaction.amount_disputed, which marks the payment disputed and reduces what can
still be refunded); a won one records the funds reinstated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django_fsm import can_proceed

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.errors import AmountTooLarge, ErrorCode, InvalidRequest, InvalidState, NotFound, PermissionDenied
from core.money import format_minor_units
from core.permissions import Capability, roles_can
from payments.models import Transaction
from payments.models.transactions import CAPTURED_STATES
from refunds.models import NOT_WON_STATES, Chargeback, ChargebackEvidence, ChargebackStatus
from refunds.services.events import chargeback_announce
from refunds.services.ledger_postings import chargeback_post_closed, chargeback_post_opened
from refunds.services.policy import REASON_MAX_LENGTH
from webhooks.events import EventType

C = ChargebackStatus
OUTCOMES = (C.WON, C.LOST)
EVIDENCE_TEXT_MAX_LENGTH = 20_000
EVIDENCE_MAX_FILES = 20
EVIDENCE_FILE_REF_MAX_LENGTH = 500


def evidence_response_days() -> int:
    return settings.FLOWPAY_CHARGEBACK_RESPONSE_DAYS


def _lock(chargeback_id: int) -> tuple[Transaction, Chargeback]:
    transaction_id = Chargeback.objects.filter(pk=chargeback_id).values_list("transaction_id", flat=True).first()
    if transaction_id is None:
        raise NotFound(f"No such chargeback: {chargeback_id}")
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    return txn, Chargeback.objects.select_for_update().get(pk=chargeback_id)


def _check_actor(actor: Actor, merchant_id: int, label: str, capability: Capability) -> None:
    """Merchants act on their own payments only; staff need `capability`."""
    if actor.type == ActorType.API and actor.merchant_id != merchant_id:
        raise NotFound(f"No such {label}.", param="id")
    if actor.type == ActorType.STAFF and not roles_can(actor.roles, capability):
        raise PermissionDenied("Chargebacks need the support, finance or admin role.")


def _withdraw(*, txn: Transaction, chargeback: Chargeback, actor: Actor) -> None:
    if chargeback.amount_withdrawn:
        txn.record_funds_withdrawn(amount=chargeback.amount_withdrawn)
        txn.save(update_fields=["amount_disputed", "disputed", "updated_at"])
    chargeback_post_closed(txn=txn, chargeback=chargeback)
    audit_record(
        actor=actor, action=AuditAction.TRANSACTION_DISPUTED, target=txn,
        details={"chargeback": chargeback.public_id, "amount_withdrawn": chargeback.amount_withdrawn,
                 "amount_on_refunded_funds": chargeback.amount_on_refunded_funds, "amount_disputed": txn.amount_disputed},
    )


@transaction.atomic
def chargeback_create(
    *,
    transaction_id: int,
    chargeback_reference: str,
    amount: int | None,
    reason: str,
    actor: Actor,
    evidence_due_by: dt.datetime | None = None,
    gateway: str = "",
    gateway_reference: str = "",
    gateway_fee: int | None = None,
) -> tuple[Chargeback, bool]:
    """Record a chargeback on a captured payment. Returns (chargeback, created): the same
    reference on the same payment again (an API retry, a redelivered gateway event) returns
    the existing chargeback, never a duplicate. `amount=None` disputes what is not already
    disputed. Used by the API (staff, merchants) and by gateway dispute events (actor
    type webhook, gateway and gateway_reference set; gateway_fee: the dispute fee the gateway
    reported, else the merchant's scheduled dispute fee is charged)."""
    txn = Transaction.objects.select_for_update().get(pk=transaction_id)
    _check_actor(actor, txn.merchant_id, "transaction", Capability.CHARGEBACK_RECORD)
    reference = (chargeback_reference or "").strip()
    if not reference or len(reference) > 255:
        raise InvalidRequest("chargebackReference must be 1 to 255 characters.", param="chargeback_reference")
    existing = Chargeback.objects.filter(transaction=txn, chargeback_reference=reference).first()
    if existing is not None:
        return existing, False
    if txn.status not in CAPTURED_STATES:
        raise InvalidState(f"Cannot record a chargeback on a {txn.status} transaction: nothing was captured.")
    if not isinstance(reason, str) or len(reason) > REASON_MAX_LENGTH or "\x00" in reason:
        raise InvalidRequest(f"The reason must be text of at most {REASON_MAX_LENGTH} characters.", param="reason")
    already = Chargeback.objects.filter(transaction=txn, status__in=NOT_WON_STATES).aggregate(total=Sum("amount"))["total"] or 0
    disputable = txn.amount_captured - already
    if amount is None:
        amount = disputable
    if amount <= 0 or amount > disputable:
        raise AmountTooLarge(
            f"Chargeback amount {amount} exceeds the amount still disputable on {txn.public_id}: {max(0, disputable)} "
            f"({format_minor_units(max(0, disputable), txn.currency)}).",
            param="amount",
        )
    now = timezone.now()
    chargeback = Chargeback(
        transaction=txn, merchant_id=txn.merchant_id, livemode=txn.livemode, chargeback_reference=reference, amount=amount,
        currency=txn.currency, reason=reason,
        evidence_due_by=evidence_due_by or now + dt.timedelta(days=evidence_response_days()),
        gateway=gateway or txn.gateway, gateway_reference=gateway_reference or "",
        initiated_by_type=str(actor.type), initiated_by_id=actor.id[:150],
    )
    chargeback.save()
    chargeback_post_opened(txn=txn, chargeback=chargeback, gateway_fee=gateway_fee)
    audit_record(
        actor=actor, action=AuditAction.CHARGEBACK_CREATE, target=chargeback,
        details={"transaction": txn.public_id, "reference": reference, "amount": amount, "currency": txn.currency,
                 "reason": reason, "evidence_due_by": chargeback.evidence_due_by.isoformat()},
    )
    chargeback_announce(chargeback, event_type=EventType.CHARGEBACK_CREATED)
    return chargeback, True


@transaction.atomic
def chargeback_submit_evidence(*, chargeback_id: int, text: str, files: Sequence[str], actor: Actor) -> Chargeback:
    """Submit the merchant's evidence (needs_response → under_review). Late evidence is
    refused: the network would not consider it."""
    txn, chargeback = _lock(chargeback_id)
    _check_actor(actor, chargeback.merchant_id, "chargeback", Capability.CHARGEBACK_RESPOND)
    text = text or ""
    files = list(files or [])
    if not text.strip() and not files:
        raise InvalidRequest("Evidence needs a text or at least one file reference.", param="text")
    if len(text) > EVIDENCE_TEXT_MAX_LENGTH or "\x00" in text:
        raise InvalidRequest(f"The evidence text must be at most {EVIDENCE_TEXT_MAX_LENGTH} characters.", param="text")
    if len(files) > EVIDENCE_MAX_FILES or any(
        not isinstance(f, str) or not f.strip() or len(f) > EVIDENCE_FILE_REF_MAX_LENGTH or "\x00" in f for f in files
    ):
        raise InvalidRequest(
            f"files must be at most {EVIDENCE_MAX_FILES} file references of 1 to {EVIDENCE_FILE_REF_MAX_LENGTH} characters.",
            param="files",
        )
    if not can_proceed(chargeback.submit_evidence):
        raise InvalidState(f"Cannot submit evidence for a {chargeback.status} chargeback: evidence is accepted only while it needs a response.")
    now = timezone.now()
    if now > chargeback.evidence_due_by:
        raise InvalidState(
            f"The evidence for {chargeback.public_id} was due by {chargeback.evidence_due_by.isoformat()}.",
            code=ErrorCode.EVIDENCE_PAST_DUE,
        )
    evidence = ChargebackEvidence.objects.create(
        chargeback=chargeback, text=text, files=files, submitted_by_type=str(actor.type), submitted_by_id=actor.id[:150],
    )
    chargeback.submit_evidence(now=now)
    chargeback.save()
    audit_record(
        actor=actor, action=AuditAction.CHARGEBACK_EVIDENCE_SUBMITTED, target=chargeback,
        details={"evidence": evidence.pk, "text_length": len(text), "files": files},
    )
    return chargeback


@transaction.atomic
def chargeback_accept(*, chargeback_id: int, actor: Actor) -> Chargeback:
    """Accept the chargeback without contesting it: the funds are withdrawn for good."""
    txn, chargeback = _lock(chargeback_id)
    _check_actor(actor, chargeback.merchant_id, "chargeback", Capability.CHARGEBACK_RESPOND)
    if not can_proceed(chargeback.accept):
        raise InvalidState(f"Cannot accept a {chargeback.status} chargeback: only chargebacks that need a response can be accepted.")
    chargeback.accept(now=timezone.now(), withdrawable=txn.amount_refundable)
    chargeback.save()
    audit_record(actor=actor, action=AuditAction.CHARGEBACK_ACCEPT, target=chargeback, details={"amount_withdrawn": chargeback.amount_withdrawn})
    _withdraw(txn=txn, chargeback=chargeback, actor=actor)
    chargeback_announce(chargeback, event_type=EventType.CHARGEBACK_CLOSED)
    return chargeback


@transaction.atomic
def chargeback_record_outcome(*, chargeback_id: int, outcome: str, actor: Actor) -> Chargeback:
    """The network's decision. Staff (finance, admin) or a gateway event record it; the same
    outcome recorded again is a no-op (redelivered events), another one is a 409."""
    if actor.type == ActorType.API or (actor.type == ActorType.STAFF and not roles_can(actor.roles, Capability.CHARGEBACK_OUTCOME)):
        raise PermissionDenied("Recording a chargeback outcome needs the finance or admin role.")
    if outcome not in OUTCOMES:
        raise InvalidRequest("outcome must be 'won' or 'lost'.", param="outcome")
    txn, chargeback = _lock(chargeback_id)
    if chargeback.status == outcome:
        return chargeback
    transition = chargeback.mark_won if outcome == C.WON else chargeback.mark_lost
    if not can_proceed(transition):
        raise InvalidState(f"Cannot record the outcome '{outcome}' for a {chargeback.status} chargeback.")
    if outcome == C.WON:
        chargeback.mark_won(now=timezone.now())
    else:
        chargeback.mark_lost(now=timezone.now(), withdrawable=txn.amount_refundable)
    chargeback.save()
    if outcome == C.WON:
        audit_record(actor=actor, action=AuditAction.CHARGEBACK_WON, target=chargeback, details={"amount_reinstated": chargeback.amount})
        chargeback_post_closed(txn=txn, chargeback=chargeback)
    else:
        audit_record(actor=actor, action=AuditAction.CHARGEBACK_LOST, target=chargeback, details={"amount_withdrawn": chargeback.amount_withdrawn})
        _withdraw(txn=txn, chargeback=chargeback, actor=actor)
    chargeback_announce(chargeback, event_type=EventType.CHARGEBACK_CLOSED)
    return chargeback


@transaction.atomic
def chargeback_apply_gateway_status(*, chargeback_id: int, status: str, actor: Actor) -> tuple[Chargeback, bool]:
    """Move a chargeback to the state its gateway dispute reports (an inbound webhook),
    forward only. Returns (chargeback, changed).

    needs_response → under_review (evidence was submitted at the gateway) | accepted | won |
    lost; under_review → won | lost (an `accepted` dispute that is already under review is
    lost). The same state again, an older one (a late `created` or `updated` after `closed`)
    or another outcome for a closed chargeback changes nothing."""
    _txn, chargeback = _lock(chargeback_id)
    if status == C.UNDER_REVIEW and chargeback.status == C.NEEDS_RESPONSE:
        chargeback.submit_evidence(now=timezone.now())
        chargeback.save()
        audit_record(actor=actor, action=AuditAction.CHARGEBACK_UNDER_REVIEW, target=chargeback, details={"source": "gateway"})
        return chargeback, True
    if status == C.ACCEPTED and chargeback.status == C.NEEDS_RESPONSE:
        return chargeback_accept(chargeback_id=chargeback_id, actor=actor), True
    if status in (C.WON, C.LOST, C.ACCEPTED) and chargeback.is_open:
        outcome = C.LOST if status == C.ACCEPTED else status
        return chargeback_record_outcome(chargeback_id=chargeback_id, outcome=outcome, actor=actor), True
    return chargeback, False
