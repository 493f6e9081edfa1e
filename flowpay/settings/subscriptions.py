"""Subscriptions: dunning and the rebill scheduler.

Code reads these as settings.X at call time, so tests may override them; core/checks.py
rejects values the scheduler cannot work with (an empty schedule, a batch of 0...)."""

from flowpay.settings.base import env

# Dunning: retries of a declined invoice, in days after its first failed charge.
FLOWPAY_DUNNING_SCHEDULE_DAYS = env.list("FLOWPAY_DUNNING_SCHEDULE_DAYS", cast=int, default=[1, 3, 5, 7])
# Decline codes not retried with the same payment method (closed account, lost card, ...).
FLOWPAY_DUNNING_HARD_DECLINE_CODES = env.list(
    "FLOWPAY_DUNNING_HARD_DECLINE_CODES",
    default=[
        "card_declined", "expired_card", "fraudulent", "incorrect_number", "incorrect_cvc", "invalid_account",
        "lost_card", "stolen_card", "pickup_card", "restricted_card", "do_not_honor", "account_closed",
        "card_not_supported", "currency_not_supported", "transaction_not_allowed", "new_account_information_available",
    ],
)
# A leased job whose worker has not heartbeated for this long is re-queued by the reaper.
FLOWPAY_REBILL_LEASE_SECONDS = env.float("FLOWPAY_REBILL_LEASE_SECONDS", default=60.0)
FLOWPAY_REBILL_HEARTBEAT_SECONDS = env.float("FLOWPAY_REBILL_HEARTBEAT_SECONDS", default=10.0)
# Subscriptions invoiced and jobs leased per batch.
FLOWPAY_REBILL_BATCH_SIZE = env.int("FLOWPAY_REBILL_BATCH_SIZE", default=100)
# Non-payment failures (exceptions, bad data, stale leases) before a job is dead-lettered.
FLOWPAY_REBILL_MAX_ATTEMPTS = env.int("FLOWPAY_REBILL_MAX_ATTEMPTS", default=5)
# Backoff after a non-payment failure: this many seconds, doubled each time, at most an hour.
FLOWPAY_REBILL_RETRY_SECONDS = env.float("FLOWPAY_REBILL_RETRY_SECONDS", default=60.0)
# Drain messages sent at most per (queue, merchant) shard in one dispatch.
FLOWPAY_REBILL_MAX_PARALLEL_PER_SHARD = env.int("FLOWPAY_REBILL_MAX_PARALLEL_PER_SHARD", default=4)
# Prefix of the rebill queue names (tests use private queues; empty in production).
FLOWPAY_REBILL_QUEUE_PREFIX = env.str("FLOWPAY_REBILL_QUEUE_PREFIX", default="")
