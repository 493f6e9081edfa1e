"""Rebill tasks. Beat runs `subscriptions.rebill_schedule` (invoice due periods, queue due
dunning retries, dispatch) and `subscriptions.rebill_reap` (re-queue stale leases,
dispatch). `subscriptions.rebill_drain` runs on the queue of a billing frequency
(rebill.daily|weekly|monthly|yearly) for one merchant's shard: it leases batches of jobs and
runs them until the shard is empty. It is acks_late and reject_on_worker_lost, but does not
depend on it: a killed worker's leases expire and the reaper re-queues its jobs."""

import logging

from celery import shared_task

from subscriptions.services.leasing import rebill_drain
from subscriptions.services.scheduling import (
    rebill_dispatch,
    rebill_queue_due_retries,
    rebill_reap_stale,
    rebill_schedule_due,
)

logger = logging.getLogger(__name__)


@shared_task(name="subscriptions.rebill_schedule", ignore_result=True)
def rebill_schedule_task() -> dict:
    result = rebill_schedule_due()
    retries = rebill_queue_due_retries()
    messages = rebill_dispatch()
    summary = {"invoices": result.invoices_created, "canceled": result.subscriptions_canceled, "retries": retries,
               "messages": messages}
    if result.invoices_created or retries:
        logger.info("rebill scheduled", extra=summary)
    return summary


@shared_task(name="subscriptions.rebill_reap", ignore_result=True)
def rebill_reap_task() -> int:
    reaped = rebill_reap_stale()
    if reaped:
        rebill_dispatch()
    return reaped


@shared_task(name="subscriptions.rebill_drain", ignore_result=True, acks_late=True, reject_on_worker_lost=True,
             time_limit=3600, soft_time_limit=3500)
def rebill_drain_task(queue: str, merchant_id: int | None = None) -> dict:
    counts = rebill_drain(queue=queue, merchant_id=merchant_id)
    if counts:
        logger.info("rebill shard drained", extra={"queue": queue, "merchant_id": merchant_id, **counts})
    return counts
