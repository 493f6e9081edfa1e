"""Refund tasks (queue `payments`, see CELERY_TASK_ROUTES). Money tasks are acks_late and
reject_on_worker_lost: a killed worker hands the refund to another one, which is safe
because refund_execute sends the same gateway idempotency key again, and never while the
killed worker's attempt may still be in flight: a run that finds a live claim returns
without calling the gateway (status `processing`, no `next_retry_at`), and
refunds.requeue_stalled queues the refund again once the claim has expired.

Tasks import the services inside their bodies, so the services can import the tasks at
module level to queue them (refunds.services.execution) without an import cycle."""

import logging

from celery import shared_task
from django.utils import timezone

from core.actors import Actor
from refunds.models import RefundStatus

logger = logging.getLogger(__name__)

# Automatic attempts after the first one, with exponential backoff and jitter
# (refund_retry_delay: about 5 s, 10 s, 20 s, 40 s, 80 s, 160 s); then the refund is left
# `failed` with the reason, for list_failed_refunds / retry_failed_refunds.
REFUND_MAX_RETRIES = 6


@shared_task(
    bind=True, name="refunds.execute", acks_late=True, reject_on_worker_lost=True, max_retries=REFUND_MAX_RETRIES,
    time_limit=60, soft_time_limit=45, ignore_result=True,
)
def refund_execute_task(self, refund_id: int) -> str:
    from refunds.services.execution import refund_execute  # in the body: see the module docstring

    final = self.request.retries >= REFUND_MAX_RETRIES
    refund = refund_execute(refund_id=refund_id, actor=Actor.worker("refunds.execute"), final_attempt=final)
    if refund.status == RefundStatus.PROCESSING and refund.next_retry_at is not None:
        countdown = max(0.0, (refund.next_retry_at - timezone.now()).total_seconds())
        logger.info("refund attempt failed; retrying", extra={"refund": refund.public_id, "countdown": round(countdown, 1)})
        raise self.retry(countdown=countdown, max_retries=REFUND_MAX_RETRIES)
    return str(refund.status)


@shared_task(name="refunds.requeue_stalled", ignore_result=True)
def refunds_requeue_stalled_task() -> int:
    from refunds.services.execution import refunds_requeue_stalled  # in the body: see the module docstring

    count = refunds_requeue_stalled()
    if count:
        logger.warning("re-queued stalled refunds", extra={"count": count})
    return count
