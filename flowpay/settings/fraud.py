"""Fraud screening: whether it runs, where its velocity counters live, what it does when
they are out of reach, the reference-currency rate table, the offline IP country table,
the review queue's claims and the limits of rules and backtests (fraud/, docs/operations.md)."""

from flowpay.settings.base import env
from flowpay.settings.database import REDIS_URL

# Screening of the payments created through the API. Off: no signals, rules or decisions
# at all (the benchmark's baseline; an emergency switch that needs a restart, unlike
# simplified flow, which keeps the block lists).
FLOWPAY_FRAUD_SCREENING_ENABLED = env.bool("FLOWPAY_FRAUD_SCREENING_ENABLED", default=True)
# The Redis of the velocity counters; empty: REDIS_URL. With neither, every decision is
# degraded (no velocity, no score) under FLOWPAY_FRAUD_FAILURE_POLICY.
FLOWPAY_FRAUD_REDIS_URL = env.str("FLOWPAY_FRAUD_REDIS_URL", default="") or REDIS_URL
# A counter call that takes longer fails (the payment is screened degraded, never held up);
# after a failure Redis is not asked again for FLOWPAY_FRAUD_REDIS_RETRY_SECONDS.
FLOWPAY_FRAUD_REDIS_TIMEOUT_SECONDS = env.float("FLOWPAY_FRAUD_REDIS_TIMEOUT_SECONDS", default=0.1)
FLOWPAY_FRAUD_REDIS_RETRY_SECONDS = env.float("FLOWPAY_FRAUD_REDIS_RETRY_SECONDS", default=5.0)
# Prefix of the counters' Redis keys (tests use one per test).
FLOWPAY_FRAUD_KEY_PREFIX = env.str("FLOWPAY_FRAUD_KEY_PREFIX", default="flowpay:fraud")
# Without the counters: fail_open screens on lists and static rules only (decision
# degraded); fail_closed blocks every payment that no allow rule lets through.
FLOWPAY_FRAUD_FAILURE_POLICY = env.str("FLOWPAY_FRAUD_FAILURE_POLICY", default="fail_open")
# :amount_in_reference: (and :amount_in_<currency>:) converts with this table: one unit of
# each currency is worth this many units of the reference currency. Not live rates: the
# deployment keeps them current enough for rules.
FLOWPAY_FRAUD_REFERENCE_CURRENCY = env.str("FLOWPAY_FRAUD_REFERENCE_CURRENCY", default="USD")
FLOWPAY_FRAUD_REFERENCE_RATES = env.list(
    "FLOWPAY_FRAUD_REFERENCE_RATES",
    default=["EUR=1.08", "GBP=1.27", "CHF=1.13", "CAD=0.74", "AUD=0.66", "JPY=0.0067", "SEK=0.095", "KWD=3.25"],
)
# IP address -> country: a CSV file (`cidr,country` or `first,last,country` lines, as the
# free GeoIP CSV exports are), read once per process; empty: the built-in table
# (fraud/screening/data/ip_countries.csv, the documentation address blocks).
FLOWPAY_FRAUD_GEOIP_FILE = env.str("FLOWPAY_FRAUD_GEOIP_FILE", default="")
# A reviewer's approve or reject holds the review this long; a decision that never finished
# (its process died) may be taken over after it.
FLOWPAY_FRAUD_REVIEW_CLAIM_SECONDS = env.int("FLOWPAY_FRAUD_REVIEW_CLAIM_SECONDS", default=60)
# POST /payment/fraud/rules/test reads at most this many payments (the newest).
FLOWPAY_FRAUD_BACKTEST_MAX_PAYMENTS = env.int("FLOWPAY_FRAUD_BACKTEST_MAX_PAYMENTS", default=10000)
# Rules a merchant may have (disabled ones do not count).
FLOWPAY_FRAUD_MAX_RULES = env.int("FLOWPAY_FRAUD_MAX_RULES", default=100)
