"""Merchant events for refunds and chargebacks (outbox, same DB transaction as the change)."""

from refunds.models import RefundStatus
from refunds.representations import ChargebackOutput, RefundOutput
from webhooks.events import EventType
from webhooks.payloads import api_payload
from webhooks.services import outbox_publish

EVENT_FOR_REFUND_STATUS = {
    RefundStatus.SUCCEEDED: EventType.REFUND_SUCCEEDED,
    RefundStatus.FAILED: EventType.REFUND_FAILED,
}


def refund_announce(refund) -> None:
    """refund.succeeded / refund.failed when a refund reaches one of those states."""
    event_type = EVENT_FOR_REFUND_STATUS.get(refund.status)
    if event_type is not None:
        outbox_publish(merchant_id=refund.merchant_id, livemode=refund.livemode,
                       event_type=event_type, payload=api_payload(RefundOutput, refund))


def chargeback_announce(chargeback, *, event_type: EventType) -> None:
    """chargeback.created, or chargeback.closed once it is won, lost or accepted."""
    outbox_publish(merchant_id=chargeback.merchant_id, livemode=chargeback.livemode,
                   event_type=event_type, payload=api_payload(ChargebackOutput, chargeback))
