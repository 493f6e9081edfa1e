from django.db import transaction

from webhooks.models import OutboxEvent


def outbox_publish(*, merchant_id: int, event_type: str, payload: dict) -> OutboxEvent:
    """Record an event for the merchant. Must run inside the caller's database transaction
    (it refuses to run outside one), next to the state change it announces."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox_publish must be called inside the state change's database transaction")
    return OutboxEvent.objects.create(merchant_id=merchant_id, type=event_type, payload=payload)
