"""The event types merchants can subscribe to (an endpoint's enabledEvents)."""

EVENT_TYPES = (
    "transaction.completed",
    "transaction.failed",
    "transaction.requires_action",
    "transaction.canceled",
    "refund.succeeded",
    "refund.failed",
    "chargeback.created",
    "chargeback.closed",
    "invoice.paid",
    "invoice.payment_failed",
    "subscription.past_due",
    "subscription.canceled",
)
