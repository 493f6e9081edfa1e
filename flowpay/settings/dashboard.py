"""The finance and operator dashboard (backoffice.dashboard): its hourly rollup's cadence."""

from flowpay.settings.base import env

# How often beat re-aggregates the recent hours of the rollup (the overview's figures lag by at most this).
FLOWPAY_DASHBOARD_ROLLUP_INTERVAL_SECONDS = env.int("FLOWPAY_DASHBOARD_ROLLUP_INTERVAL_SECONDS", default=60)
# Hours re-aggregated by each refresh, the current one included: where statuses still move.
FLOWPAY_DASHBOARD_ROLLUP_RECENT_HOURS = env.int("FLOWPAY_DASHBOARD_ROLLUP_RECENT_HOURS", default=3)
# The nightly settle re-aggregates this many days (outcomes that arrive days later).
FLOWPAY_DASHBOARD_ROLLUP_SETTLE_DAYS = env.int("FLOWPAY_DASHBOARD_ROLLUP_SETTLE_DAYS", default=7)
FLOWPAY_DASHBOARD_ROLLUP_SETTLE_HOUR_UTC = env.int("FLOWPAY_DASHBOARD_ROLLUP_SETTLE_HOUR_UTC", default=3)
# Payments `make run` seeds for the dashboard's demo (seed_demo), over the last 30 days.
FLOWPAY_DASHBOARD_DEMO_PAYMENTS = env.int("FLOWPAY_DASHBOARD_DEMO_PAYMENTS", default=300)
