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
- At most one kick waits in the queue: a commit made while one waits is relayed by it (that
  relay has not started, so it reads the commit's events), and the relay clears the
  pending kick as it starts, before it reads (`outbox_relay_kicked`).
- In simplified-flow mode (disaster recovery) the fan-out pauses: events keep accumulating
  and are relayed, in order, once the mode is switched off.
"""

from __future__ import annotations

import contextlib
import logging

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from core.runtime import simplified_flow_enabled
from webhooks.events import EventType
from webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from webhooks.services.deliveries import webhook_deliveries_queue
from webhooks.tasks import outbox_relay_task

logger = logging.getLogger(__name__)

RELAY_BATCH_SIZE = 200
# Set while a relay kick waits in the queue (module docstring). Its lifetime bounds how long
# kicks pause when a queued kick is lost; the beat sweep relays what it left meanwhile.
RELAY_KICK_PENDING_KEY = "flowpay:outbox:relay-kick-pending"
RELAY_KICK_PENDING_SECONDS = 10


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
    # Relays run concurrently without conflict (SKIP LOCKED); a kick already waiting will
    # relay this commit's events, so none is added (the module's rule); a dropped kick
    # leaves the event to the beat sweep.
    try:
        if not cache.add(RELAY_KICK_PENDING_KEY, 1, timeout=RELAY_KICK_PENDING_SECONDS):
            return
        outbox_relay_task.delay()
    except Exception:  # the beat sweep relays it anyway; never fail the committed change
        logger.warning("outbox relay kick failed; the beat sweep will relay", exc_info=True)
        with contextlib.suppress(Exception):  # the cache may be what failed
            cache.delete(RELAY_KICK_PENDING_KEY)  # no kick waits: let the next commit kick


def outbox_relay_kicked() -> int:
    """The relay a commit kicked: it clears the pending kick before it reads, so any commit
    from now on kicks again (or is read by this relay)."""
    cache.delete(RELAY_KICK_PENDING_KEY)
    return outbox_relay()


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

