"""Funds becoming available: a captured payment's net amount moves from the merchant's
pending funds to its available funds once its availability date (the capture plus the
merchant's delay, 2 days by default) has come. Beat runs `ledger_release_due` every
FLOWPAY_LEDGER_RELEASE_INTERVAL_SECONDS.

Rule: D P net, then a merchant credit of net (a receivable left by refunds or chargebacks
is paid first). Each payment is released once (the posting's idempotency key and a unique
constraint on the payment it releases); a release run twice, or by two beat replicas at
once, moves nothing twice.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from ledger.models import LedgerKind, LedgerTransaction, SourceType
from ledger.services.movements import PENDING, debit, merchant_credit
from ledger.services.postings import Posting, PostingResult, ledger_post


def payments_due_for_release(*, now: dt.datetime):
    """Payments whose availability date has come and whose net amount is still pending."""
    released = LedgerTransaction.objects.filter(kind=LedgerKind.AVAILABILITY, related_transaction=OuterRef("pk"))
    return (
        LedgerTransaction.objects.filter(kind=LedgerKind.PAYMENT, available_on__lte=now, net__gt=0)
        .exclude(Exists(released)).order_by("available_on", "id")
    )


@transaction.atomic
def ledger_release_payment(*, payment_id: int, now: dt.datetime | None = None) -> PostingResult:
    payment = LedgerTransaction.objects.get(pk=payment_id, kind=LedgerKind.PAYMENT)
    now = now or timezone.now()
    return ledger_post(posting=Posting(
        merchant_id=payment.merchant_id, livemode=payment.livemode, currency=payment.currency,
        kind=LedgerKind.AVAILABILITY, idempotency_key=f"availability:{payment.public_id}",
        source_type=SourceType.LEDGER_TRANSACTION, source_id=payment.public_id,
        legs=[debit(PENDING, payment.net), merchant_credit(payment.net)], effective_at=now,
        related_transaction_id=payment.pk, description=f"Funds of {payment.source_id} available",
    ))


def ledger_release_due(*, now: dt.datetime | None = None, limit: int | None = None,
                       actor: Actor | None = None) -> int:
    """Release up to `limit` (FLOWPAY_LEDGER_RELEASE_BATCH_SIZE) due payments, each in its own
    database transaction; returns how many were released now (audited once per run: each
    release is its own immutable ledger transaction)."""
    now = now or timezone.now()
    limit = limit or settings.FLOWPAY_LEDGER_RELEASE_BATCH_SIZE
    released = 0
    for payment_id in list(payments_due_for_release(now=now).values_list("pk", flat=True)[:limit]):
        released += ledger_release_payment(payment_id=payment_id, now=now).created
    if released:
        audit_record(actor=actor or Actor.system("ledger.release"), action=AuditAction.LEDGER_FUNDS_RELEASED,
                     details={"payments": released, "as_of": now.isoformat()})
    return released
