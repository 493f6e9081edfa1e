"""Webhooks: deliveries to merchants, and events received from the gateways."""

from flowpay.settings.base import DEBUG, env

# --- Merchant webhooks ----------------------------------------------------------------
# Deliveries retry with exponential backoff (base, doubling, capped) and jitter for about
# three days, then are dead-lettered (re-sendable through the API or webhook_deliveries).
FLOWPAY_WEBHOOK_BACKOFF_BASE_SECONDS = env.float("FLOWPAY_WEBHOOK_BACKOFF_BASE_SECONDS", default=60.0)
FLOWPAY_WEBHOOK_BACKOFF_CAP_SECONDS = env.float("FLOWPAY_WEBHOOK_BACKOFF_CAP_SECONDS", default=12 * 3600.0)
FLOWPAY_WEBHOOK_RETRY_WINDOW_SECONDS = env.int("FLOWPAY_WEBHOOK_RETRY_WINDOW_SECONDS", default=3 * 24 * 3600)
# The endpoint's time to answer; a delivery's lease is derived from it.
FLOWPAY_WEBHOOK_TIMEOUT_SECONDS = env.float("FLOWPAY_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Endpoints on private, loopback or plain-http addresses are refused unless this is on
# (it is in DEBUG, for make run and local tests).
FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS", default=DEBUG)

# --- Inbound gateway events -------------------------------------------------------------
# A failed inbound event is retried this many times (with backoff), then waits for replay_webhook_events.
FLOWPAY_INBOUND_EVENT_MAX_ATTEMPTS = env.int("FLOWPAY_INBOUND_EVENT_MAX_ATTEMPTS", default=5)
# An event left processing by a dead worker is claimable again after this long (> the task time limit).
FLOWPAY_INBOUND_EVENT_LEASE_SECONDS = env.int("FLOWPAY_INBOUND_EVENT_LEASE_SECONDS", default=600)
# First retry delay of a failed event, doubled each time up to 10 minutes, with jitter.
FLOWPAY_INBOUND_EVENT_RETRY_BASE_SECONDS = env.float("FLOWPAY_INBOUND_EVENT_RETRY_BASE_SECONDS", default=10.0)
