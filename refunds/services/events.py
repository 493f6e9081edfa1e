"""Merchant events for refunds and chargebacks (outbox, same DB transaction as the change)."""

from webhooks.payloads import api_payload
from webhooks.services import outbox_publish


def refund_announce(refund) -> None:
    """refund.succeeded / refund.failed when a refund reaches one of those states."""
    from refunds.api.serializers import RefundOutput

    if refund.status in ("succeeded", "failed"):
        outbox_publish(merchant_id=refund.merchant_id, event_type=f"refund.{refund.status}", payload=api_payload(RefundOutput, refund))


def chargeback_announce(chargeback, *, event_type: str) -> None:
    """chargeback.created, or chargeback.closed once it is won, lost or accepted."""
    from refunds.api.serializers import ChargebackOutput

    outbox_publish(merchant_id=chargeback.merchant_id, event_type=event_type, payload=api_payload(ChargebackOutput, chargeback))
