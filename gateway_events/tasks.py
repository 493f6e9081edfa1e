"""Celery tasks for the inbox of gateway events. Each loads the event by id and calls one
service; services are imported in the task bodies so that the services can queue these tasks
from module level without an import cycle. The task names are kept from when this code
lived in payments: messages already queued under them must still find their task."""

from celery import shared_task


@shared_task(name="payments.process_inbound_event", ignore_result=True, acks_late=True,
             reject_on_worker_lost=True, queue="payments")
def process_inbound_event_task(inbound_event_id: int, rechecks: int = 0) -> None:
    """Apply one verified gateway event from the inbox. A failed event is tried again with
    backoff until FLOWPAY_INBOUND_EVENT_MAX_ATTEMPTS, then waits for replay_webhook_events.
    An event another worker holds (or held when it died: acks_late redelivers this message
    at once) is looked at again when that worker's lease has expired."""
    from gateway_events.models import InboundEventStatus
    from gateway_events.services import (
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
    from gateway_events.services import inbound_events_requeue_stalled

    return inbound_events_requeue_stalled()
