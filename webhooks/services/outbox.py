"""The transactional outbox and its relay to merchant endpoints.

Rules:
- An event is written in the same database transaction as the state change it announces
  (outbox_publish), so it exists if and only if the change was committed.
- An event has the mode of the object it announces, and goes only to endpoints of that
  mode: a live payment is never announced to a test endpoint, nor a test one to a live.
- The relay turns unrelayed events into one delivery per (event, matching endpoint), in
  batches under SELECT … FOR UPDATE SKIP LOCKED, kicked on commit and swept by beat, so a
  relay that dies between the commit and the HTTP call loses nothing: its deliveries are
  committed rows that the delivery sweeper sends.
- In simplified-flow mode (disaster recovery) the fan-out pauses: events keep accumulating
  and are relayed, in order, once the mode is switched off.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from core.runtime import simplified_flow_enabled
from webhooks.events import EventType
from webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from webhooks.services.deliveries import webhook_deliveries_queue
from webhooks.tasks import outbox_relay_task

logger = logging.getLogger(__name__)

RELAY_BATCH_SIZE = 200


def outbox_publish(*, merchant_id: int, event_type: EventType, payload: dict, livemode: bool | None = None) -> OutboxEvent:
    """Record an event for the merchant, in the mode of the object announced (`livemode`; None:
    the payload's own flag, which every API object carries). Must run inside the caller's
    database transaction (it refuses to run outside one), next to the state change it
    announces. An unknown event type is a ValueError: no endpoint could subscribe to it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox_publish must be called inside the state change's database transaction")
    if livemode is None:
        livemode = bool(payload.get("livemode", False))
    event = OutboxEvent.objects.create(
        merchant_id=merchant_id, livemode=livemode, type=EventType(event_type).value, payload=payload
    )
    transaction.on_commit(_kick_relay)
    return event


def _kick_relay() -> None:
    # Every commit kicks: relays run concurrently without conflict (SKIP LOCKED), and a
    # dropped kick would leave the event to the beat sweep.
    try:
        outbox_relay_task.delay()
    except Exception:  # the beat sweep relays it anyway; never fail the committed change
        logger.warning("outbox relay kick failed; the beat sweep will relay", exc_info=True)


def outbox_relay(*, batch_size: int = RELAY_BATCH_SIZE, max_batches: int = 50) -> int:
    """Relay unrelayed events in batches; returns how many events were relayed."""
    if simplified_flow_enabled():
        return 0
    relayed = 0
    for _ in range(max_batches):
        count = _outbox_relay_batch(batch_size=batch_size)
        relayed += count
        if count < batch_size:
            break
    return relayed


@transaction.atomic
def _outbox_relay_batch(*, batch_size: int) -> int:
    events = list(
        OutboxEvent.objects.select_for_update(skip_locked=True)
        .filter(relayed_at__isnull=True)
        .order_by("id")[:batch_size]
    )
    if not events:
        return 0
    now = timezone.now()
    endpoints: dict[tuple[int, bool], list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(
        merchant_id__in={e.merchant_id for e in events}, status=WebhookEndpoint.Status.ENABLED, deleted_at__isnull=True
    ):
        endpoints.setdefault((endpoint.merchant_id, endpoint.livemode), []).append(endpoint)
    deliveries = [
        WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now, retry_window_started_at=now)
        for event in events
        for endpoint in endpoints.get((event.merchant_id, event.livemode), [])
        if endpoint.accepts(event.type)
    ]
    WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True, batch_size=500)
    OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(relayed_at=now)
    if deliveries:
        ids = list(
            WebhookDelivery.objects.filter(event_id__in=[e.pk for e in events], status=WebhookDelivery.Status.PENDING)
            .values_list("pk", flat=True)
        )
        transaction.on_commit(lambda: webhook_deliveries_queue(ids))
    return len(events)

