"""Sending events to merchant endpoints.

A delivery is claimed by one conditional UPDATE (pending/retrying and due, or delivering
with an expired lease → delivering), sent with no database transaction open, then its
outcome recorded. A 2xx answer delivers it; anything else schedules a retry with
exponential backoff and jitter until the retry window (about three days) is spent, then
the delivery is dead-lettered and can be re-sent. Merchants deduplicate by event id: a
worker that dies after the endpoint answered but before recording it sends it again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time

import urllib3
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from djangorestframework_camel_case.settings import api_settings as camel_settings
from djangorestframework_camel_case.util import camelize

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import ErrorCode, InvalidRequest, InvalidState
from core.runtime import simplified_flow_enabled
from webhooks.destinations import DestinationRefused, destination_post, destination_refusal, destination_resolve
from webhooks.models import OutboxEvent, WebhookDelivery
from webhooks.signing import signature_header

logger = logging.getLogger(__name__)

D = WebhookDelivery.Status


def event_document(event: OutboxEvent) -> dict:
    """The event as merchants receive it (webhook body and GET /payment/events)."""
    return {
        "id": event.public_id,
        "object": "event",
        "type": event.type,
        "livemode": event.livemode,
        "created": int(event.created_at.timestamp()),
        "created_at": event.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": {"object": event.payload},
    }


def event_body(event: OutboxEvent) -> bytes:
    document = camelize(event_document(event), **camel_settings.JSON_UNDERSCOREIZE)
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(n-1), capped, then uniform in [50%, 100%]."""
    base = settings.FLOWPAY_WEBHOOK_BACKOFF_BASE_SECONDS
    cap = settings.FLOWPAY_WEBHOOK_BACKOFF_CAP_SECONDS
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return random.uniform(delay / 2, delay)


def webhook_deliveries_due(*, limit: int = 500) -> list[int]:
    now = timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            Q(status__in=[D.PENDING, D.RETRYING], next_attempt_at__lte=now)
            | Q(status=D.DELIVERING, lease_expires_at__lt=now)
        ).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )


def webhook_delivery_attempt(*, delivery_id: int) -> str | None:
    """Send one delivery if it is due and nobody else holds it. Returns the resulting
    status, or None when it was not claimed (not due, delivered, paused)."""
    if simplified_flow_enabled():
        return None  # fan-out paused; the sweep catches up when the mode is off
    now = timezone.now()
    lease = dt.timedelta(seconds=settings.FLOWPAY_WEBHOOK_TIMEOUT_SECONDS * 3 + 30)
    claimed = WebhookDelivery.objects.filter(
        Q(pk=delivery_id)
        & (Q(status__in=[D.PENDING, D.RETRYING], next_attempt_at__lte=now) | Q(status=D.DELIVERING, lease_expires_at__lt=now))
    ).update(status=D.DELIVERING, lease_expires_at=now + lease, attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    status_code, error = _send(delivery)
    return _record_outcome(delivery=delivery, status_code=status_code, error=error)


def _send(delivery: WebhookDelivery) -> tuple[int | None, str]:
    try:
        destination = destination_resolve(delivery.endpoint.url)
    except DestinationRefused as refused:
        return None, f"destination refused: {refused}"
    body = event_body(delivery.event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "FlowPay-Webhooks/1.0",
        "FlowPay-Event-Id": delivery.event.public_id,
        "FlowPay-Delivery-Id": delivery.public_id,
        "FlowPay-Signature": signature_header(secret=delivery.endpoint.secret, body=body, timestamp=int(time.time())),
    }
    timeout = settings.FLOWPAY_WEBHOOK_TIMEOUT_SECONDS
    try:
        status = destination_post(destination, body=body, headers=headers, connect_timeout=5, read_timeout=timeout)
    except urllib3.exceptions.HTTPError as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:300]}"
    return status, "" if 200 <= status < 300 else f"HTTP {status}"


def _record_outcome(*, delivery: WebhookDelivery, status_code: int | None, error: str) -> str:
    now = timezone.now()
    update = {"last_status_code": status_code, "last_error": error[:500], "lease_expires_at": None}
    if not error:
        update.update(status=D.SUCCEEDED, delivered_at=now)
    else:
        window = dt.timedelta(seconds=settings.FLOWPAY_WEBHOOK_RETRY_WINDOW_SECONDS)
        next_at = now + dt.timedelta(seconds=retry_delay(delivery.attempts))
        if next_at > delivery.retry_window_started_at + window:
            update.update(status=D.DEAD)
            logger.warning("webhook delivery dead-lettered", extra={"delivery": delivery.public_id, "error": error[:200]})
        else:
            update.update(status=D.RETRYING, next_attempt_at=next_at)
    # Only the holder of the claim records it (a reclaimed delivery is someone else's now).
    WebhookDelivery.objects.filter(pk=delivery.pk, status=D.DELIVERING, attempts=delivery.attempts).update(**update)
    return update["status"]


@transaction.atomic
def webhook_delivery_resend(*, delivery_id: int, actor: Actor) -> WebhookDelivery:
    """Send a dead (or delivered) delivery again, now, with a fresh retry window."""
    now = timezone.now()
    changed = WebhookDelivery.objects.filter(pk=delivery_id, status__in=[D.DEAD, D.SUCCEEDED]).update(
        status=D.PENDING, next_attempt_at=now, retry_window_started_at=now, lease_expires_at=None
    )
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    if not changed:
        raise InvalidState(f"Delivery {delivery.public_id} is {delivery.status}: only dead or delivered ones can be re-sent.")
    audit_record(
        actor=actor, action=AuditAction.WEBHOOK_DELIVERY_RESEND, target=delivery, merchant_id=delivery.endpoint.merchant_id,
        details={"event": delivery.event.public_id, "endpoint": delivery.endpoint.public_id},
    )
    transaction.on_commit(lambda: webhook_deliveries_queue([delivery.pk]))
    return delivery


def validate_destination(url: str) -> None:
    refusal = destination_refusal(url)
    if refusal:
        raise InvalidRequest(f"This URL cannot receive webhooks: {refusal}.", code=ErrorCode.URL_INVALID, param="url")


# The delivery task (webhooks.tasks) runs this module's services, so it is queued by its
# registered name rather than imported: the task module depends on the services, never back.
DELIVER_TASK = "webhooks.deliver"


def webhook_deliveries_queue(delivery_ids: list[int]) -> None:
    """Queue committed deliveries for sending; one that cannot be queued (broker down) is
    left to the beat sweep, which finds every due delivery."""
    for delivery_id in delivery_ids:
        try:
            current_app.signature(DELIVER_TASK, args=(delivery_id,)).delay()
        except Exception:  # the committed delivery is swept by beat
            logger.warning("could not queue a webhook delivery; the sweep will send it", exc_info=True)
            return
