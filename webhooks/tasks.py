"""Celery tasks of merchant webhooks. Each imports the service it runs inside its body: the
services queue these tasks at module level (outbox_publish kicks the relay on commit), so a
module-level import back would be a cycle."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="webhooks.relay_outbox", ignore_result=True)
def outbox_relay_task() -> int:
    """Kicked on commit by outbox_publish (the sweep task relays what a lost kick left)."""
    from webhooks.services.outbox import outbox_relay_kicked

    return outbox_relay_kicked()


@shared_task(name="webhooks.deliver", ignore_result=True, acks_late=True, reject_on_worker_lost=True, queue="webhooks")
def webhook_deliver_task(delivery_id: int) -> None:
    from webhooks.services.deliveries import webhook_delivery_attempt

    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.sweep", ignore_result=True)
def webhooks_sweep_task() -> int:
    """Beat: relay what a lost kick left behind, then queue due retries and deliveries
    whose sender died (expired lease)."""
    from core.runtime import simplified_flow_enabled
    from webhooks.services.deliveries import webhook_deliveries_due
    from webhooks.services.outbox import outbox_relay

    if simplified_flow_enabled():
        return 0
    outbox_relay()
    due = webhook_deliveries_due()
    for delivery_id in due:
        webhook_deliver_task.delay(delivery_id)
    return len(due)
