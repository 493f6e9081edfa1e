"""Ledger tasks (beat: flowpay/settings/celery.py). Money tasks are acks_late and
reject_on_worker_lost: every one is safe to run twice (postings are idempotent, a payout is
sent under its own idempotency key and claimed before each call).

Tasks import the services inside their bodies, so the services can import the tasks at
module level to queue them without an import cycle."""

import logging

from celery import shared_task

from core.actors import Actor

logger = logging.getLogger(__name__)


@shared_task(name="ledger.release_available_funds", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def ledger_release_available_funds_task() -> int:
    from ledger.services.availability import ledger_release_due

    released = ledger_release_due(actor=Actor.worker("ledger.release_available_funds"))
    if released:
        logger.info("funds made available", extra={"payments": released})
    return released


@shared_task(name="ledger.sweep_payouts", ignore_result=True)
def ledger_sweep_payouts_task() -> int:
    """Queue a send for every pending payout whose attempt is due, and a follow-up for every
    payout in transit."""
    from ledger.selectors import payouts_due_for_follow_up, payouts_due_for_send

    sends = list(payouts_due_for_send())
    follow_ups = list(payouts_due_for_follow_up())
    for payout_id in sends:
        payout_send_task.delay(payout_id)
    for payout_id in follow_ups:
        payout_follow_up_task.delay(payout_id)
    return len(sends) + len(follow_ups)


@shared_task(name="ledger.payout_send", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             time_limit=60, soft_time_limit=45)
def payout_send_task(payout_id: int) -> str:
    from ledger.services.payouts import payout_send

    return str(payout_send(payout_id=payout_id, actor=Actor.worker("ledger.payout_send")).status)


@shared_task(name="ledger.payout_follow_up", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             time_limit=60, soft_time_limit=45)
def payout_follow_up_task(payout_id: int) -> str:
    from ledger.services.payouts import payout_follow_up

    return str(payout_follow_up(payout_id=payout_id, actor=Actor.worker("ledger.payout_follow_up")).status)


@shared_task(name="ledger.create_scheduled_payouts", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def ledger_create_scheduled_payouts_task() -> int:
    from ledger.services.payout_schedule import payouts_create_scheduled

    return len(payouts_create_scheduled(actor=Actor.worker("ledger.create_scheduled_payouts")))
