"""PayPal events → FlowPay changes (see gateways.events).

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

from collections.abc import Mapping

from gateways.base import GatewayError, WebhookEvent
from gateways.event_types import DisputeChange, EventChanges, PaymentChange, RefundChange
from gateways.paypal.adapter import _parse_time, from_paypal_value

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
        evidence_due_by=_parse_time(resource.get("seller_response_due_date")),
    )
