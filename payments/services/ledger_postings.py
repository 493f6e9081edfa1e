"""The ledger posting of a payment's capture (ledger.services.movements), called once per
capture inside the database transaction that records it: the create flow's authorization
with capture, transaction_capture, and settlement from the gateway's view. Posted last in
that transaction, so the merchant's ledger accounts stay locked for the shortest time."""

from django.utils import timezone

from ledger.services.movements import Money, ledger_post_capture
from payments.models import Transaction


def transaction_post_capture(txn: Transaction, *, gateway_fee: int | None) -> None:
    """`gateway_fee`: the fee the gateway reported with the capture, None when it did not."""
    ledger_post_capture(
        money=Money(merchant_id=txn.merchant_id, livemode=txn.livemode, currency=txn.currency),
        gateway=txn.gateway, transaction_public_id=txn.public_id, amount=txn.amount_captured,
        gateway_fee=gateway_fee, captured_at=txn.finalized_at or timezone.now(),
    )
