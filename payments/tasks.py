import logging

from celery import shared_task

from payments.services.idempotency import idempotency_records_purge

logger = logging.getLogger(__name__)


@shared_task(name="payments.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys_task() -> int:
    deleted = idempotency_records_purge()
    logger.info("purged idempotency keys", extra={"deleted": deleted})
    return deleted


@shared_task(name="payments.check_stuck_transactions", ignore_result=True)
def check_stuck_transactions_task() -> int:
    """Beat: queue one resolution task per stuck transaction (processing for too long)."""
    from payments.services.stuck import transactions_stuck

    ids = list(transactions_stuck().values_list("pk", flat=True)[:500])
    for transaction_id in ids:
        resolve_stuck_transaction_task.delay(transaction_id)
    if ids:
        logger.warning("stuck transactions found", extra={"count": len(ids)})
    return len(ids)


@shared_task(name="payments.resolve_stuck_transaction", ignore_result=True, acks_late=True,
             reject_on_worker_lost=True, queue="payments")
def resolve_stuck_transaction_task(transaction_id: int) -> None:
    from audit.actors import Actor
    from payments.services.stuck import transaction_resolve_stuck

    transaction_resolve_stuck(transaction_id=transaction_id, actor=Actor.worker("payments.resolve_stuck_transaction"))


@shared_task(name="payments.process_inbound_event", ignore_result=True, acks_late=True,
             reject_on_worker_lost=True, queue="payments")
def process_inbound_event_task(inbound_event_id: int, rechecks: int = 0) -> None:
    """Apply one verified gateway event from the inbox. A failed event is tried again with
    backoff until FLOWPAY_INBOUND_EVENT_MAX_ATTEMPTS, then waits for replay_webhook_events.
    An event another worker holds (or held when it died: acks_late redelivers this message
    at once) is looked at again when that worker's lease has expired."""
    from payments.models import InboundEventStatus
    from payments.services.inbound import (
        inbound_event_lease,
        inbound_event_max_attempts,
        inbound_event_process,
        inbound_event_retry_delay,
    )

    row = inbound_event_process(inbound_event_id=inbound_event_id)
    if row.status == InboundEventStatus.FAILED and row.attempts < inbound_event_max_attempts():
        process_inbound_event_task.apply_async((inbound_event_id,), countdown=inbound_event_retry_delay(row.attempts))
    elif row.status == InboundEventStatus.PROCESSING and rechecks < 3:
        process_inbound_event_task.apply_async(
            (inbound_event_id, rechecks + 1), countdown=inbound_event_lease().total_seconds() + 5,
        )


@shared_task(name="payments.requeue_stalled_inbound_events", ignore_result=True)
def requeue_stalled_inbound_events_task() -> int:
    """Beat: queue again inbound events whose processing was lost (broker outage, dead worker)."""
    from payments.services.inbound import inbound_events_requeue_stalled

    return inbound_events_requeue_stalled()
