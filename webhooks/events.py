"""The event types FlowPay announces to merchants (OutboxEvent.type) and that an endpoint
can subscribe to (its enabledEvents). The values are part of the public API: never rename one."""

from enum import StrEnum


class EventType(StrEnum):
    TRANSACTION_COMPLETED = "transaction.completed"
    TRANSACTION_FAILED = "transaction.failed"
    TRANSACTION_REQUIRES_ACTION = "transaction.requires_action"
    TRANSACTION_CANCELED = "transaction.canceled"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    CHARGEBACK_CREATED = "chargeback.created"
    CHARGEBACK_CLOSED = "chargeback.closed"
    INVOICE_PAID = "invoice.paid"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
    SUBSCRIPTION_PAST_DUE = "subscription.past_due"
    SUBSCRIPTION_CANCELED = "subscription.canceled"
    PAYOUT_PAID = "payout.paid"
    PAYOUT_FAILED = "payout.failed"
    # A payment fraud screening held for review: the review opened, and decided (approved or
    # rejected: the payload's status and result say which and what became of the payment).
    REVIEW_OPENED = "review.opened"
    REVIEW_CLOSED = "review.closed"
