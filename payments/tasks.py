"""Celery tasks of payments: the stuck-transaction checker. Each loads by id and calls one
service, imported in the task body so that services may queue these tasks at module level
without an import cycle."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="payments.check_stuck_transactions", ignore_result=True)
def check_stuck_transactions_task() -> int:
    """Beat: queue one resolution task per payment whose gateway answer is missing: processing
    (payments.services.stuck's rule), or with a capture or void whose answer was lost."""
    from payments.selectors import stuck_check_threshold, transactions_stuck, transactions_with_unknown_capture_or_void

    threshold = stuck_check_threshold()
    ids = list(transactions_stuck(older_than=threshold).values_list("pk", flat=True)[:500])
    ids += list(transactions_with_unknown_capture_or_void(older_than=threshold).values_list("pk", flat=True)[:500])
    for transaction_id in ids:
        resolve_stuck_transaction_task.delay(transaction_id)
    if ids:
        logger.warning("stuck transactions found", extra={"count": len(ids)})
    return len(ids)


@shared_task(name="payments.resolve_stuck_transaction", ignore_result=True, acks_late=True,
             reject_on_worker_lost=True, queue="payments")
def resolve_stuck_transaction_task(transaction_id: int) -> None:
    from core.actors import Actor
    from payments.services.stuck import transaction_resolve_stuck

    transaction_resolve_stuck(transaction_id=transaction_id, actor=Actor.worker("payments.resolve_stuck_transaction"))
