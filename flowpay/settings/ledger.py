"""The double-entry ledger: availability of captured funds, the default fee schedule, payouts
and the verifier. Per-merchant values (ledger.MerchantLedgerSettings) override the defaults."""

from flowpay.settings.base import env

# Days from a capture until its net amount is available to pay out (a merchant's own
# setting overrides it).
FLOWPAY_LEDGER_AVAILABILITY_DELAY_DAYS = env.int("FLOWPAY_LEDGER_AVAILABILITY_DELAY_DAYS", default=2)
# The fee schedule of a payment whose gateway does not report its fee: basis points of the
# captured amount plus a fixed part, and the fee of a dispute, in minor units of the payment's
# currency. Reconciliation corrects them with the gateway's actual fees.
FLOWPAY_LEDGER_FEE_PERCENT_BPS = env.int("FLOWPAY_LEDGER_FEE_PERCENT_BPS", default=290)
FLOWPAY_LEDGER_FEE_FIXED = env.int("FLOWPAY_LEDGER_FEE_FIXED", default=30)
FLOWPAY_LEDGER_DISPUTE_FEE = env.int("FLOWPAY_LEDGER_DISPUTE_FEE", default=1500)
# How often beat releases funds whose availability date has come, and how many payments one
# run releases (the rest wait for the next run).
FLOWPAY_LEDGER_RELEASE_INTERVAL_SECONDS = env.int("FLOWPAY_LEDGER_RELEASE_INTERVAL_SECONDS", default=300)
FLOWPAY_LEDGER_RELEASE_BATCH_SIZE = env.int("FLOWPAY_LEDGER_RELEASE_BATCH_SIZE", default=1000)
# How often beat asks the gateways about payouts in transit, and sends again payouts whose
# gateway call did not get an answer; the first retry waits this long, doubling, at most an hour.
FLOWPAY_PAYOUT_CHECK_INTERVAL_SECONDS = env.int("FLOWPAY_PAYOUT_CHECK_INTERVAL_SECONDS", default=300)
FLOWPAY_PAYOUT_RETRY_SECONDS = env.int("FLOWPAY_PAYOUT_RETRY_SECONDS", default=60)
# The hour (UTC) at which beat makes the scheduled (daily, weekly) payouts, and at which it
# runs verify_ledger every night.
FLOWPAY_PAYOUT_SCHEDULE_HOUR_UTC = env.int("FLOWPAY_PAYOUT_SCHEDULE_HOUR_UTC", default=1)
FLOWPAY_LEDGER_VERIFY_HOUR_UTC = env.int("FLOWPAY_LEDGER_VERIFY_HOUR_UTC", default=3)
