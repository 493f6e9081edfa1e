"""PayPal webhooks: the verified event's normalisation into a WebhookEvent, and PayPal
events -> FlowPay changes (see gateways.events). The verification itself is a call to PayPal
(verify-webhook-signature), made by the adapter's parse_webhook.

Acted on:
- PAYMENT.CAPTURE.COMPLETED | .DENIED | .DECLINED | .PENDING: the capture's state. The
  payment is found by the capture id, its authorization or order id
  (`supplementary_data.related_ids`), or the `custom_id` FlowPay sets to its transaction id;
- PAYMENT.CAPTURE.REFUNDED: the resource is the refund (found by its id);
- CUSTOMER.DISPUTE.CREATED | .UPDATED | .RESOLVED: the dispute's state and, once resolved,
  its outcome.
Everything else is recorded and ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlsplit

from gateways.base import GatewayError, WebhookEvent, WebhookVerificationError
from gateways.event_types import DisputeChange, EventChanges, PaymentChange, RefundChange
from gateways.paypal.mapping import first_unit, from_paypal_value, parse_time

# The live hosts; anything else (sandbox, a local fake) is test mode.
LIVE_HOSTS = {"api-m.paypal.com", "api.paypal.com"}

WEBHOOK_HEADERS = {
    "auth_algo": "paypal-auth-algo",
    "cert_url": "paypal-cert-url",
    "transmission_id": "paypal-transmission-id",
    "transmission_sig": "paypal-transmission-sig",
    "transmission_time": "paypal-transmission-time",
}

CAPTURE_EVENT_STATUS = {
    "PAYMENT.CAPTURE.COMPLETED": "succeeded",
    "PAYMENT.CAPTURE.DENIED": "failed",
    "PAYMENT.CAPTURE.DECLINED": "failed",
    "PAYMENT.CAPTURE.PENDING": "processing",
}
DISPUTE_EVENTS = {"CUSTOMER.DISPUTE.CREATED", "CUSTOMER.DISPUTE.UPDATED", "CUSTOMER.DISPUTE.RESOLVED"}
REFUND_STATUS = {"COMPLETED": "succeeded", "FAILED": "failed", "CANCELLED": "failed", "PENDING": "pending"}
DISPUTE_STATUS = {
    "OPEN": "needs_response",
    "WAITING_FOR_SELLER_RESPONSE": "needs_response",
    "WAITING_FOR_BUYER_RESPONSE": "needs_response",
    "OTHER": "needs_response",
    "UNDER_REVIEW": "under_review",
}
# A resolved dispute's outcome. RESOLVED_WITH_PAYOUT: PayPal paid the buyer itself, the
# merchant keeps the money, as in a won dispute.
DISPUTE_OUTCOME = {
    "RESOLVED_BUYER_FAVOUR": "lost",
    "RESOLVED_SELLER_FAVOUR": "won",
    "RESOLVED_WITH_PAYOUT": "won",
    "CANCELED_BY_BUYER": "won",
    "DENIED": "won",
    "ACCEPTED": "accepted",
}


# --- the verified event ----------------------------------------------------------------
def webhook_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The PAYPAL-* transmission headers, whatever their case or Django META form."""
    normalised: dict[str, str] = {}
    for name, value in (headers or {}).items():
        key = str(name).lower().replace("_", "-")
        if key.startswith("http-"):
            key = key[5:]
        normalised[key] = str(value).strip() if value is not None else ""
    return {field: normalised.get(header, "") for field, header in WEBHOOK_HEADERS.items()}


def webhook_document(payload: bytes) -> dict:
    """The webhook body as an event document; WebhookVerificationError when it is not one."""
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise WebhookVerificationError("PayPal webhook body is not JSON") from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("event_type"):
        raise WebhookVerificationError("PayPal webhook body is not an event")
    return event


def verification_request(found: dict[str, str], *, webhook_id: str, payload: bytes) -> bytes:
    """The body of POST /v1/notifications/verify-webhook-signature. The event is spliced in
    as received: PayPal verifies the JSON it was sent, and a re-serialised copy (key order,
    escapes, number format) can fail verification."""
    head = json.dumps({**found, "webhook_id": webhook_id})
    raw = payload if isinstance(payload, bytes) else str(payload).encode()
    return head[:-1].encode() + b', "webhook_event": ' + raw.strip() + b"}"


def webhook_event(event: dict, *, api_base: str) -> WebhookEvent:
    """A verified event document as FlowPay's WebhookEvent."""
    resource = event.get("resource") if isinstance(event.get("resource"), dict) else {}
    created = parse_time(event.get("create_time"))
    if created is None:
        raise WebhookVerificationError("PayPal webhook has no readable create_time")
    flowpay_reference = resource.get("custom_id")
    if not flowpay_reference and resource.get("purchase_units"):
        flowpay_reference = first_unit(resource).get("custom_id")
    return WebhookEvent(
        id=str(event["id"]),
        gateway="paypal",
        type=str(event["event_type"]),
        created=created,
        object_type=str(event.get("resource_type") or ""),
        object_reference=resource.get("id"),
        flowpay_reference=flowpay_reference or None,
        data=resource,
        livemode=urlsplit(api_base).hostname in LIVE_HOSTS,
    )


# --- event -> changes ------------------------------------------------------------------
def paypal_event_changes(event: WebhookEvent) -> EventChanges:
    resource = event.data if isinstance(event.data, dict) else {}
    try:
        if event.type in CAPTURE_EVENT_STATUS:
            return EventChanges(payment=_capture(event, resource))
        if event.type == "PAYMENT.CAPTURE.REFUNDED":
            return EventChanges(refunds=(_refund(resource),))
        if event.type in DISPUTE_EVENTS:
            return EventChanges(dispute=_dispute(event, resource))
    except GatewayError as exc:  # an amount PayPal wrote in a way FlowPay cannot read exactly
        return EventChanges(unsupported=f"unreadable {event.type} event: {exc}")
    return EventChanges(unsupported=f"FlowPay does not act on {event.type} events")


def _minor(money: Mapping | None) -> int:
    if not isinstance(money, Mapping) or not money.get("value"):
        return 0
    return from_paypal_value(str(money["value"]), str(money.get("currency_code") or ""))


def _capture(event: WebhookEvent, resource: dict) -> PaymentChange:
    status = CAPTURE_EVENT_STATUS[event.type]
    related = ((resource.get("supplementary_data") or {}).get("related_ids") or {}) if isinstance(
        resource.get("supplementary_data"), dict) else {}
    references = tuple(
        r for r in (resource.get("id"), related.get("authorization_id"), related.get("order_id")) if isinstance(r, str) and r
    )
    message = ""
    if status == "failed":
        details = resource.get("status_details") if isinstance(resource.get("status_details"), dict) else {}
        message = f"PayPal {str(resource.get('status') or 'denied').lower()} the capture"
        if details.get("reason"):
            message += f" ({details['reason']})"
    return PaymentChange(
        status=status,
        references=references,
        flowpay_reference=event.flowpay_reference or resource.get("custom_id") or None,
        amount_captured=_minor(resource.get("amount")) if status == "succeeded" else 0,
        failure_code="card_declined" if status == "failed" else None,
        failure_message=message,
    )


def _up_capture_id(resource: dict) -> str | None:
    """A refund's capture, from its `up` link (…/v2/payments/captures/{id})."""
    for link in resource.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == "up" and "/captures/" in str(link.get("href") or ""):
            return str(link["href"]).rstrip("/").rsplit("/", 1)[-1]
    return None


def _refund(resource: dict) -> RefundChange:
    capture_id = _up_capture_id(resource)
    return RefundChange(
        reference=resource.get("id") if isinstance(resource.get("id"), str) else None,
        status=REFUND_STATUS.get(str(resource.get("status") or ""), "pending"),
        amount=_minor(resource.get("amount")),
        payment_references=(capture_id,) if capture_id else (),
        failure_code="refund_failed" if resource.get("status") in ("FAILED", "CANCELLED") else None,
    )


def _dispute(event: WebhookEvent, resource: dict) -> DisputeChange:
    raw_status = str(resource.get("status") or "")
    outcome = resource.get("dispute_outcome") if isinstance(resource.get("dispute_outcome"), dict) else {}
    outcome_code = str(outcome.get("outcome_code") or "")
    if raw_status == "RESOLVED" or event.type == "CUSTOMER.DISPUTE.RESOLVED":
        status = DISPUTE_OUTCOME.get(outcome_code, "other")
        gateway_status = f"RESOLVED/{outcome_code or 'NONE'}"
    else:
        status = DISPUTE_STATUS.get(raw_status, "needs_response")
        gateway_status = raw_status
    transactions = [t for t in resource.get("disputed_transactions") or [] if isinstance(t, dict)]
    references = tuple(
        t["seller_transaction_id"] for t in transactions if isinstance(t.get("seller_transaction_id"), str)
    )
    custom = next((t.get("custom") for t in transactions if isinstance(t.get("custom"), str) and t.get("custom")), None)
    amount_money = resource.get("dispute_amount") if isinstance(resource.get("dispute_amount"), dict) else None
    return DisputeChange(
        reference=str(resource.get("dispute_id") or resource.get("id") or ""),
        status=status,
        gateway_status=gateway_status,
        payment_references=references,
        flowpay_reference=custom,
        amount=_minor(amount_money) or None,
        currency=str((amount_money or {}).get("currency_code") or "").upper(),
        reason=str(resource.get("reason") or "")[:500],
        evidence_due_by=parse_time(resource.get("seller_response_due_date")),
    )
