"""The inbound webhook endpoint: verify, store in the inbox, acknowledge. Nothing else.

The signature is the authentication (no API key, no session, no CSRF token): the body is
read exactly as sent (`request.body`) and handed to the gateway adapter, which verifies it
(Stripe: `Stripe-Signature` with stripe.Webhook.construct_event, 300 s tolerance, several
secrets while rotating; PayPal: its verify-webhook-signature call). An unverifiable
delivery is answered 400 and nothing is stored, logged or audited but the rejection itself
(never the body). A verified event is stored and acknowledged with 200 before it is
processed (by the `payments.process_inbound_event` task); a redelivery is acknowledged
with `"duplicate": true` and has no second effect.
"""

import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.api.errors import error_body
from core.api.parsers import MAX_JSON_DEPTH, json_depth_exceeds
from core.errors import ErrorCode, ForeignCode, error_code_for
from core.storable import unstorable_path
from gateway_events.services import InboxQueueError, inbound_event_record
from gateways.base import WebhookVerificationError
from gateways.events import webhook_configuration_hint, webhook_configured
from gateways.registry import gateway_named

logger = logging.getLogger(__name__)


def _error(status: int, *, code: ErrorCode | ForeignCode, message: str, type: str = "invalid_request_error") -> JsonResponse:
    return JsonResponse(error_body(type=type, code=code, message=message), status=status)


def _unstorable(gateway: str, message: str) -> JsonResponse:
    logger.warning("inbound webhook rejected: %s", message, extra={"gateway": gateway, "reason": ErrorCode.WEBHOOK_PAYLOAD_INVALID})
    return _error(400, code=ErrorCode.WEBHOOK_PAYLOAD_INVALID, message=message)


@csrf_exempt
def gateway_webhook(request: HttpRequest, gateway: str) -> JsonResponse:
    if request.method != "POST":
        response = _error(405, code=ErrorCode.METHOD_NOT_ALLOWED, message=f"Method {request.method} not allowed: POST the event.")
        response["Allow"] = "POST"
        return response
    enabled = gateway in settings.FLOWPAY_GATEWAYS
    if not webhook_configured(gateway):
        # A gateway that is configured for webhooks is served even when it no longer takes
        # new payments: refunds and disputes of its past payments keep arriving.
        if not enabled:
            return _error(404, code=ErrorCode.RESOURCE_MISSING, message=f"The {gateway} gateway is not enabled in this deployment.")
        logger.error("inbound webhook refused: %s webhooks are not configured", gateway, extra={"gateway": gateway})
        return _error(400, code=ErrorCode.WEBHOOK_NOT_CONFIGURED,
                      message=f"{gateway} webhooks are not configured: {webhook_configuration_hint(gateway)}.")
    # Checked before the adapter parses the body: a decoder or an SDK nesting objects that
    # deep would fail with a RecursionError (a 500) rather than a refusal.
    if json_depth_exceeds(request.body.decode("utf-8", errors="replace")):
        return _unstorable(gateway, f"The event is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        event = gateway_named(gateway).parse_webhook(payload=request.body, headers=request.headers)
    except WebhookVerificationError as exc:
        logger.warning("inbound webhook rejected: %s", exc, extra={"gateway": gateway, "reason": exc.code})
        return _error(400, code=error_code_for(exc.code), message=str(exc))
    fields = [event.id, event.type, event.object_type, event.object_reference, event.flowpay_reference, event.data]
    if unstorable_path(fields) is not None:
        # Verified, but PostgreSQL cannot store it (the inbox insert would fail with a 500):
        # refused like a malformed event, without logging the offending text.
        return _unstorable(gateway, "The event contains a NUL character or a lone surrogate, which cannot be stored.")
    try:
        row, created = inbound_event_record(event=event)
    except InboxQueueError:
        # Stored, but not queued: a non-2xx makes the gateway deliver it again, which
        # finds the stored event and queues it.
        return _error(503, type="api_error", code=ErrorCode.QUEUE_UNAVAILABLE,
                      message="The event was stored but cannot be queued right now; deliver it again later.")
    logger.info(
        "inbound webhook %s", "received" if created else "duplicate",
        extra={"gateway": gateway, "event": event.id, "event_type": event.type, "inbound_event": row.pk},
    )
    return JsonResponse({"received": True, "duplicate": not created})
