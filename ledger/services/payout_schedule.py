"""Automatic payouts: each day (beat, ledger.create_scheduled_payouts) every merchant whose
payout schedule is `daily`, or `weekly` on today's weekday, is paid out everything available
in each mode and currency. A payout per (merchant, mode, currency, day) at most: its
schedule key is unique, so a second run (or a second beat replica) creates nothing."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError
from django.db.models import F, Q
from django.utils import timezone

from core.actors import Actor
from core.errors import FlowPayError
from ledger.models import AccountCode, LedgerAccount, MerchantLedgerSettings, Payout, PayoutSchedule
from ledger.services.payouts import payout_create

logger = logging.getLogger(__name__)


def scheduled_payout_key(*, merchant_id: int, livemode: bool, currency: str, day: dt.date) -> str:
    return f"{merchant_id}:{'live' if livemode else 'test'}:{currency}:{day.isoformat()}"


def payouts_create_scheduled(*, actor: Actor, today: dt.date | None = None) -> list[Payout]:
    today = today or timezone.now().date()
    due = MerchantLedgerSettings.objects.filter(
        Q(payout_schedule=PayoutSchedule.DAILY) | Q(payout_schedule=PayoutSchedule.WEEKLY, payout_weekday=today.weekday())
    ).values_list("merchant_id", flat=True)
    accounts = (
        LedgerAccount.objects.filter(merchant_id__in=list(due), code=AccountCode.MERCHANT_AVAILABLE)
        .annotate(room=F("credits_posted") - F("debits_posted") - F("debits_pending")).filter(room__gt=0)
        .order_by("merchant_id", "livemode", "currency")
    )
    made = []
    for account in accounts:
        key = scheduled_payout_key(merchant_id=account.merchant_id, livemode=account.livemode, currency=account.currency, day=today)
        if Payout.objects.filter(schedule_key=key).exists():
            continue
        try:
            made.append(payout_create(
                merchant_id=account.merchant_id, livemode=account.livemode, amount=account.room, currency=account.currency,
                actor=actor, description=f"Scheduled payout of {today.isoformat()}", schedule_key=key,
            ))
        except IntegrityError:
            continue  # made meanwhile by another run
        except FlowPayError as exc:  # the balance moved meanwhile, or no gateway pays out
            logger.warning("scheduled payout not made", extra={"merchant": account.merchant_id, "currency": account.currency,
                                                                "error": str(exc.code)})
    return made
