"""Refunds and chargebacks."""

from flowpay.settings.base import env

# Four-eyes: the most a staff user without refund.approve (support) may refund alone on one
# payment, all their refunds on it together (minor units of its currency); beyond it a
# finance or admin user must approve.
FLOWPAY_SUPPORT_REFUND_LIMIT = env.int("FLOWPAY_SUPPORT_REFUND_LIMIT", default=10000)
# The same, over every payment in the last 24 hours, per currency (minor units of each).
FLOWPAY_SUPPORT_REFUND_DAILY_LIMIT = env.int("FLOWPAY_SUPPORT_REFUND_DAILY_LIMIT", default=50000)
# One run at a time sends a refund: its claim lasts this long (longer than the task's hard
# time limit, 60 s, and the gateway timeouts) before another run may take over with the same
# key. With the requeue below, a refund whose worker died mid-call settles within 2 minutes.
FLOWPAY_REFUND_CLAIM_SECONDS = env.float("FLOWPAY_REFUND_CLAIM_SECONDS", default=75.0)
# A refund that should be running but is not (its message lost, its worker killed, its retry
# overdue) is queued again by beat once it has been still this long (and its claim expired).
FLOWPAY_REFUND_STALLED_AFTER_SECONDS = env.float("FLOWPAY_REFUND_STALLED_AFTER_SECONDS", default=30.0)
# Gateways keep idempotency keys this long (Stripe: 24 h): an unknown-outcome refund whose key
# is older is looked up at the gateway instead of being sent again.
FLOWPAY_REFUND_KEY_RETENTION_SECONDS = env.float("FLOWPAY_REFUND_KEY_RETENTION_SECONDS", default=86400.0)
# An attempt that got no final answer (gateway unavailable, timeout) is retried with the same
# key after base * 2^(n-1) seconds, capped, with jitter.
FLOWPAY_REFUND_RETRY_BASE_SECONDS = env.float("FLOWPAY_REFUND_RETRY_BASE_SECONDS", default=5.0)
FLOWPAY_REFUND_RETRY_CAP_SECONDS = env.float("FLOWPAY_REFUND_RETRY_CAP_SECONDS", default=600.0)

# Evidence for a chargeback is due this many days after it is opened, unless the gateway
# gives a due date.
FLOWPAY_CHARGEBACK_RESPONSE_DAYS = env.int("FLOWPAY_CHARGEBACK_RESPONSE_DAYS", default=7)
