"""Payment gateways: which are enabled, routing, circuit breaker, retries, timeouts, stuck
payments, operator switches and key rotation."""

from flowpay.settings.base import env

# Gateways in priority order; the router fails over along this list.
FLOWPAY_GATEWAYS = env.list("FLOWPAY_GATEWAYS", default=["simulator"])
# Operator switches (primary gateway, fallback/simplified modes) are re-read this often.
FLOWPAY_RUNTIME_REFRESH_SECONDS = env.float("FLOWPAY_RUNTIME_REFRESH_SECONDS", default=2.0)

# Circuit breaker per gateway: open after N failures within the window, let one probe
# through after the cooldown; a probe that never reports back frees its slot after
# FLOWPAY_BREAKER_PROBE_SECONDS.
FLOWPAY_BREAKER_FAILURE_THRESHOLD = env.int("FLOWPAY_BREAKER_FAILURE_THRESHOLD", default=5)
FLOWPAY_BREAKER_WINDOW_SECONDS = env.int("FLOWPAY_BREAKER_WINDOW_SECONDS", default=60)
FLOWPAY_BREAKER_COOLDOWN_SECONDS = env.float("FLOWPAY_BREAKER_COOLDOWN_SECONDS", default=30.0)
FLOWPAY_BREAKER_PROBE_SECONDS = env.int("FLOWPAY_BREAKER_PROBE_SECONDS", default=30)

# Retries of calls that provably did nothing at the gateway, with exponential backoff and jitter.
FLOWPAY_GATEWAY_RETRIES = env.int("FLOWPAY_GATEWAY_RETRIES", default=2)
FLOWPAY_GATEWAY_BACKOFF_BASE_SECONDS = env.float("FLOWPAY_GATEWAY_BACKOFF_BASE_SECONDS", default=0.2)
FLOWPAY_GATEWAY_BACKOFF_CAP_SECONDS = env.float("FLOWPAY_GATEWAY_BACKOFF_CAP_SECONDS", default=2.0)

# HTTP timeouts of the Stripe adapter's calls; probes (health, credential checks) are kept
# short so that a slow gateway never holds a health check.
FLOWPAY_GATEWAY_CONNECT_TIMEOUT_SECONDS = env.float("FLOWPAY_GATEWAY_CONNECT_TIMEOUT_SECONDS", default=5.0)
FLOWPAY_GATEWAY_READ_TIMEOUT_SECONDS = env.float("FLOWPAY_GATEWAY_READ_TIMEOUT_SECONDS", default=30.0)
FLOWPAY_GATEWAY_PROBE_TIMEOUT_SECONDS = env.float("FLOWPAY_GATEWAY_PROBE_TIMEOUT_SECONDS", default=5.0)

# A payment processing for longer than this is stuck for operators (find_stuck_transactions):
# the checker should have settled it by then.
FLOWPAY_STUCK_AFTER_SECONDS = env.int("FLOWPAY_STUCK_AFTER_SECONDS", default=120)
# The checker (every FLOWPAY_STUCK_CHECK_INTERVAL_SECONDS) asks the gateway about a payment
# whose last gateway call, or with none its processing, started this long ago; and about a
# capture or void whose answer was lost, once this old. See payments.services.stuck.
FLOWPAY_STUCK_CHECK_AFTER_SECONDS = env.int("FLOWPAY_STUCK_CHECK_AFTER_SECONDS", default=45)
# "No record at the gateway" fails a payment whose call was sent only once that call is this
# old: sooner it may mean "not visible yet" (search lag, a request still running at the
# gateway). For gateways whose look-up is authoritative (simulator, Stripe: a search lag of
# up to a minute); the others (PayPal) wait FLOWPAY_STUCK_NO_RECORD_GRACE_UNVERIFIED_SECONDS.
FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS = env.int("FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS", default=75)
FLOWPAY_STUCK_NO_RECORD_GRACE_UNVERIFIED_SECONDS = env.int("FLOWPAY_STUCK_NO_RECORD_GRACE_UNVERIFIED_SECONDS", default=900)

# Gateway keys older than this are due for rotation (check_api_key_rotation, the PCI report).
FLOWPAY_KEY_ROTATION_DAYS = env.int("FLOWPAY_KEY_ROTATION_DAYS", default=90)
