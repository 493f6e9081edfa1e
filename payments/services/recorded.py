"""A payment the gateway made that FlowPay has no record of (found by reconciliation as
`missing_locally`), recorded as completed: `transaction_record_from_gateway`.

Rules: finance or admin only (reconciliation.resolve), with a reason; the gateway reference
must not belong to a FlowPay payment already (a second record of one payment would count the
money twice); the record is a completed payment of the amount the gateway captured, audited
with who recorded it and why. No gateway call is made and no merchant event is sent (the
merchant never asked for this payment: finance contacts them).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import Merchant
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.errors import InvalidRequest, InvalidState, NotFound, PermissionDenied
from core.money import MAX_AMOUNT, is_supported_currency
from core.permissions import Capability, roles_can
from payments.models import Transaction

RECORDED_PAYMENT_METHOD = "recorded_from_gateway"


@transaction.atomic
def transaction_record_from_gateway(
    *, merchant_public_id: str, gateway: str, reference: str, amount: int, currency: str, settled_at: dt.datetime | None,
    reason: str, actor: Actor,
) -> Transaction:
    if actor.type != ActorType.STAFF or not roles_can(actor.roles, Capability.RECONCILIATION_RESOLVE):
        raise PermissionDenied("Recording a gateway's payment needs the finance or admin role.")
    if not reason.strip():
        raise InvalidRequest("A reason is required to record a gateway's payment.", param="reason")
    if not reference or not 0 < amount <= MAX_AMOUNT or not is_supported_currency(currency):
        raise InvalidRequest("Only a gateway charge with a reference, a positive amount and a known currency can be recorded.")
    merchant = Merchant.objects.filter(public_id=merchant_public_id).first()
    if merchant is None:
        raise NotFound(f"No such merchant: '{merchant_public_id[:64]}'", param="merchant")
    if Transaction.objects.filter(gateway=gateway, gateway_reference=reference).exists():
        raise InvalidState(f"The {gateway} payment {reference} is already recorded in FlowPay.")
    now = timezone.now()
    txn = Transaction(
        merchant=merchant, amount=amount, currency=currency, payment_method=RECORDED_PAYMENT_METHOD,
        payment_method_token="", description="recorded from the gateway's settlement report",
        metadata={"recorded_from_gateway": reference},
    )
    txn.start_processing(gateway=gateway, now=now)
    txn.mark_completed(reference=reference, amount_captured=amount, now=settled_at or now)
    txn.save()
    audit_record(actor=actor, action=AuditAction.TRANSACTION_RECORDED_FROM_GATEWAY, target=txn, details={
        "gateway": gateway, "reference": reference, "amount": amount, "currency": currency, "reason": reason,
    })
    return txn
