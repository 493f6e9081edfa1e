"""Reconciliation with the gateways' settlement reports (reconciliation/)."""

from flowpay.settings.base import env

# The settlement day is a calendar day in this time zone (the platform's: one gateway
# account settles every merchant's payments in one report).
FLOWPAY_RECONCILIATION_TIME_ZONE = env.str("FLOWPAY_RECONCILIATION_TIME_ZONE", default="UTC")
# A FlowPay payment or refund that has no gateway row yet is `missing_at_gateway` only once it
# is this old (the gateway may list it later); per gateway as gateway=seconds (PayPal lists a
# transaction up to three hours after it happened; the simulator at once), else the default.
FLOWPAY_RECONCILIATION_SETTLEMENT_DELAY_SECONDS = env.int("FLOWPAY_RECONCILIATION_SETTLEMENT_DELAY_SECONDS", default=3600)
FLOWPAY_RECONCILIATION_SETTLEMENT_DELAYS = env.list(
    "FLOWPAY_RECONCILIATION_SETTLEMENT_DELAYS", default=["paypal=14400", "simulator=0"],
)
# The last rung of the matching ladder: a gateway row without FlowPay's id and a FlowPay
# record without the gateway's reference match on amount and currency this close in time.
FLOWPAY_RECONCILIATION_MATCH_WINDOW_SECONDS = env.int("FLOWPAY_RECONCILIATION_MATCH_WINDOW_SECONDS", default=600)
# Beat reconciles the previous day of every enabled gateway at this time (UTC).
FLOWPAY_RECONCILIATION_HOUR_UTC = env.int("FLOWPAY_RECONCILIATION_HOUR_UTC", default=4)
FLOWPAY_RECONCILIATION_MINUTE_UTC = env.int("FLOWPAY_RECONCILIATION_MINUTE_UTC", default=0)
# A scheduled run that fails (gateway down) is retried with exponential backoff (60 s,
# doubling, at most an hour, with jitter) this many times: about 12 hours; the
# ReconciliationNotRunning alert fires after 26 hours without a successful run.
FLOWPAY_RECONCILIATION_MAX_RETRIES = env.int("FLOWPAY_RECONCILIATION_MAX_RETRIES", default=16)
# How many items `reconcile_payments` lists (the run records them all).
FLOWPAY_RECONCILIATION_REPORT_ITEMS = env.int("FLOWPAY_RECONCILIATION_REPORT_ITEMS", default=500)
