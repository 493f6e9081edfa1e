"""Payout services: create, send, follow up.

Request-then-confirm, as for payments: `payout_create` commits the payout `pending` with its
reservation on the available funds (refused with 400 insufficient_funds past them), then
`payout_send` calls the gateway holding no lock and records the answer in a second short
transaction. One call at a time: a send first claims the payout with a conditional UPDATE
(its `next_attempt_at` pushed forward), so the API request and a beat retry never send the
same payout at once; every call carries the payout's idempotency key. A call whose answer
was lost (timeout) leaves the payout pending with `outcome_unknown`: the next attempt asks
the gateway for the payout by its key before sending anything again.

Lock order: the payout row, then the ledger accounts (inside ledger_post).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import ErrorCode, InvalidRequest
from gateways.base import GatewayError, GatewayRequestError, GatewayUnavailableError, PayoutGateway, PayoutResult, PayoutState
from gateways.registry import enabled_gateway_names, gateway_named
from gateways.router import observed_call
from ledger.models import AccountCode, LedgerAccount, Payout, PayoutStatus
from ledger.representations import PayoutOutput
from ledger.services.payout_postings import (
    post_payout_failed,
    post_payout_in_transit,
    post_payout_paid,
    post_payout_reserved,
)
from webhooks.events import EventType
from webhooks.payloads import api_payload
from webhooks.services import outbox_publish

logger = logging.getLogger(__name__)

P = PayoutStatus
# The longest a pending payout waits between two attempts.
MAX_RETRY_SECONDS = 3600


def payout_gateway_name(*, merchant_id: int, livemode: bool, currency: str) -> str:
    """The gateway that pays out: of the enabled gateways able to make payouts, the one
    holding the most of the merchant's funds in that mode and currency (its clearing
    account), the first enabled on a tie."""
    names = [name for name in enabled_gateway_names() if isinstance(gateway_named(name), PayoutGateway)]
    if not names:
        raise InvalidRequest("No enabled gateway makes payouts in this deployment.", code=ErrorCode.GATEWAY_DISABLED)
    held = {
        account.gateway: account.balance
        for account in LedgerAccount.objects.filter(
            merchant_id=merchant_id, livemode=livemode, currency=currency, code=AccountCode.GATEWAY_CLEARING, gateway__in=names,
        )
    }
    return max(names, key=lambda name: (held.get(name, 0), -names.index(name)))


def payout_create(
    *, merchant_id: int, livemode: bool, amount: int, currency: str, actor: Actor, description: str = "",
    idempotency_record_id: int | None = None, schedule_key: str | None = None,
) -> Payout:
    """Reserve `amount` of the merchant's available funds and send the payout (see the
    module docstring). Returns the payout as the gateway left it (in_transit, or pending
    when the gateway could not answer: beat sends it again)."""
    if idempotency_record_id is not None:
        existing = Payout.objects.filter(idempotency_record_id=idempotency_record_id).first()
        if existing is not None:  # a request re-run under the same Idempotency-Key after a crash
            return existing
    payout = _payout_open(
        merchant_id=merchant_id, livemode=livemode, amount=amount, currency=currency, description=description,
        actor=actor, idempotency_record_id=idempotency_record_id, schedule_key=schedule_key,
    )
    return payout_send(payout_id=payout.pk, actor=actor)


@transaction.atomic
def _payout_open(
    *, merchant_id: int, livemode: bool, amount: int, currency: str, description: str, actor: Actor,
    idempotency_record_id: int | None, schedule_key: str | None,
) -> Payout:
    now = timezone.now()
    payout = Payout(
        merchant_id=merchant_id, livemode=livemode, amount=amount, currency=currency, description=description,
        automatic=schedule_key is not None, schedule_key=schedule_key,
        gateway=payout_gateway_name(merchant_id=merchant_id, livemode=livemode, currency=currency),
        next_attempt_at=now, initiated_by_type=str(actor.type), initiated_by_id=actor.id[:150],
        idempotency_record_id=idempotency_record_id,
    )
    payout.save()
    post_payout_reserved(payout, at=now)  # InsufficientFunds: this whole transaction is rolled back
    audit_record(actor=actor, action=AuditAction.PAYOUT_CREATE, target=payout,
                 details={"amount": amount, "currency": currency, "gateway": payout.gateway, "automatic": payout.automatic})
    return payout


def payout_send(*, payout_id: int, actor: Actor) -> Payout:
    """One attempt at the gateway for a pending payout whose attempt is due; anything else
    (paid, failed, in transit, or another run sending it now) is left as it is."""
    payout = _payout_claim(payout_id)
    if payout is None:
        return Payout.objects.get(pk=payout_id)
    gateway = gateway_named(payout.gateway)
    try:
        result = None
        if payout.outcome_unknown:
            result = observed_call(gateway=payout.gateway, operation="fetch_payout", flowpay_id=payout.public_id,
                                   call=lambda: gateway.fetch_payout(idempotency_key=payout.idempotency_key))
        if result is None:
            result = observed_call(gateway=payout.gateway, operation="payout", flowpay_id=payout.public_id, call=lambda: gateway.payout(
                amount=payout.amount, currency=payout.currency, flowpay_reference=payout.public_id,
                description=payout.description, idempotency_key=payout.idempotency_key,
            ))
    except GatewayError as exc:
        return _payout_record_error(payout_id=payout_id, error=exc, actor=actor)
    return payout_apply_gateway_result(payout_id=payout_id, result=result, actor=actor)


def _payout_claim(payout_id: int) -> Payout | None:
    now = timezone.now()
    lease = dt.timedelta(seconds=settings.FLOWPAY_PAYOUT_RETRY_SECONDS)
    claimed = Payout.objects.filter(pk=payout_id, status=P.PENDING, next_attempt_at__lte=now).update(
        attempts=F("attempts") + 1, next_attempt_at=now + lease, updated_at=now,
    )
    return Payout.objects.get(pk=payout_id) if claimed else None


@transaction.atomic
def _payout_record_error(*, payout_id: int, error: GatewayError, actor: Actor) -> Payout:
    payout = Payout.objects.select_for_update().get(pk=payout_id)
    if payout.status != P.PENDING:
        return payout
    if isinstance(error, GatewayRequestError) and not payout.outcome_unknown:
        # Refused before anything was paid: the reservation goes back.
        return _payout_fail(payout, code=error.code, message=str(error), actor=actor)
    unknown = not isinstance(error, (GatewayUnavailableError, GatewayRequestError))
    delay = min(MAX_RETRY_SECONDS, settings.FLOWPAY_PAYOUT_RETRY_SECONDS * 2 ** max(0, payout.attempts - 1))
    payout.record_attempt_error(unknown_outcome=unknown, next_attempt_at=timezone.now() + dt.timedelta(seconds=delay))
    payout.save()
    audit_record(actor=actor, action=AuditAction.PAYOUT_ATTEMPT_FAILED, target=payout, result="failure",
                 details={"error": error.code, "outcome_unknown": payout.outcome_unknown, "attempt": payout.attempts,
                          "next_attempt_at": payout.next_attempt_at.isoformat()})
    logger.warning("payout attempt failed; it stays pending and is sent again with the same key",
                   extra={"payout": payout.public_id, "gateway": payout.gateway, "error": error.code})
    return payout


@transaction.atomic
def payout_apply_gateway_result(*, payout_id: int, result: PayoutResult, actor: Actor) -> Payout:
    """Move the payout to what its gateway says, forward only: pending → in_transit → paid,
    pending or in_transit → failed. The same state again changes nothing."""
    payout = Payout.objects.select_for_update().get(pk=payout_id)
    now = timezone.now()
    if payout.status == P.PENDING:
        payout.mark_in_transit(reference=result.reference, arrival_date=result.arrival_date, now=now)
        payout.save()
        post_payout_in_transit(payout, at=now)
        audit_record(actor=actor, action=AuditAction.PAYOUT_IN_TRANSIT, target=payout,
                     details={"gateway": payout.gateway, "reference": result.reference})
    if payout.status != P.IN_TRANSIT:
        return payout
    if result.state == PayoutState.PAID:
        payout.mark_paid(now=now)
        payout.save()
        post_payout_paid(payout, at=now)
        audit_record(actor=actor, action=AuditAction.PAYOUT_PAID, target=payout, details={"reference": payout.gateway_reference})
        _announce(payout, EventType.PAYOUT_PAID)
    elif result.state == PayoutState.FAILED:
        _payout_fail(payout, code=result.failure_code or "payout_failed", message=result.failure_message, actor=actor)
    return payout


def _payout_fail(payout: Payout, *, code: str, message: str, actor: Actor) -> Payout:
    """Fail the payout (row locked by the caller) and give its amount back."""
    was_in_transit = payout.status == P.IN_TRANSIT
    now = timezone.now()
    payout.mark_failed(code=code, message=message or "The gateway refused the payout.", now=now)
    payout.save()
    post_payout_failed(payout, was_in_transit=was_in_transit, at=now)
    audit_record(actor=actor, action=AuditAction.PAYOUT_FAILED, target=payout, result="failure",
                 details={"error": code, "message": payout.failure_message, "was_in_transit": was_in_transit})
    _announce(payout, EventType.PAYOUT_FAILED)
    return payout


def payout_follow_up(*, payout_id: int, actor: Actor) -> Payout:
    """Ask the gateway about a payout in transit (beat, ledger.follow_up_payouts)."""
    payout = Payout.objects.get(pk=payout_id)
    if payout.status != P.IN_TRANSIT:
        return payout
    gateway = gateway_named(payout.gateway)
    try:
        result = observed_call(gateway=payout.gateway, operation="fetch_payout", flowpay_id=payout.public_id,
                               call=lambda: gateway.fetch_payout(reference=payout.gateway_reference))
    except GatewayError as exc:
        logger.warning("payout follow-up failed; asked again on the next run",
                       extra={"payout": payout.public_id, "gateway": payout.gateway, "error": exc.code})
        return payout
    if result is None:
        logger.error("the gateway does not know a payout in transit: reconcile manually",
                     extra={"payout": payout.public_id, "gateway": payout.gateway, "reference": payout.gateway_reference})
        return payout
    return payout_apply_gateway_result(payout_id=payout_id, result=result, actor=actor)


def _announce(payout: Payout, event_type: EventType) -> None:
    outbox_publish(merchant_id=payout.merchant_id, livemode=payout.livemode, event_type=event_type,
                   payload=api_payload(PayoutOutput, payout))
