"""Merchant events for transaction state changes (written to the outbox in the same
database transaction as the change)."""

from payments.models import Transaction, TransactionStatus
from payments.representations import transaction_representation  # the payload is the API's rendering
from webhooks.events import EventType
from webhooks.payloads import api_payload_of
from webhooks.services import outbox_publish

S = TransactionStatus
EVENT_FOR_STATUS = {
    S.COMPLETED: EventType.TRANSACTION_COMPLETED,
    S.FAILED: EventType.TRANSACTION_FAILED,
    S.REQUIRES_ACTION: EventType.TRANSACTION_REQUIRES_ACTION,
    S.CANCELED: EventType.TRANSACTION_CANCELED,
}


def transaction_announce(txn: Transaction, *, representation: dict | None = None) -> None:
    """Publish the event for the status the transaction just reached, if merchants care.
    `representation`: the transaction already rendered in its new state (rendered here
    otherwise)."""
    event_type = EVENT_FOR_STATUS.get(txn.status)
    if event_type is not None:
        outbox_publish(merchant_id=txn.merchant_id, livemode=txn.livemode, event_type=event_type,
                       payload=api_payload_of(representation if representation is not None else transaction_representation(txn)))
