"""The back office's lists, exports, review queues and dead letters (backoffice.dashboard)."""

from pathlib import Path

from flowpay.settings.base import RUN_DIR, env

# A list export of up to this many rows is streamed in the response; a larger one is queued
# and written to a file by a worker, then downloaded from the Exports page.
FLOWPAY_EXPORT_STREAM_MAX_ROWS = env.int("FLOWPAY_EXPORT_STREAM_MAX_ROWS", default=100_000)
# Rows fetched per round trip of the server-side cursor (memory stays flat whatever the size).
FLOWPAY_EXPORT_CHUNK_ROWS = env.int("FLOWPAY_EXPORT_CHUNK_ROWS", default=2000)
# Where workers write queued exports; web processes read the same directory (a shared volume).
FLOWPAY_EXPORT_DIR = Path(env.str("FLOWPAY_EXPORT_DIR", default=str(RUN_DIR / "exports")))
# The queue of the export task (a worker must consume it; `default` is consumed by every worker).
FLOWPAY_EXPORT_QUEUE = env.str("FLOWPAY_EXPORT_QUEUE", default="default")
# A written export's file is deleted this many days after it was finished (the export is then
# `expired`); files exports may hold customers' data, so they are not kept for ever.
FLOWPAY_EXPORT_RETENTION_DAYS = env.int("FLOWPAY_EXPORT_RETENTION_DAYS", default=7)
# The nightly removal of expired export files, at minute 15 of this hour (UTC).
FLOWPAY_EXPORT_EXPIRY_HOUR_UTC = env.int("FLOWPAY_EXPORT_EXPIRY_HOUR_UTC", default=2)

# The review queues list chargebacks whose evidence is due within this many days.
FLOWPAY_CHARGEBACK_DUE_SOON_DAYS = env.int("FLOWPAY_CHARGEBACK_DUE_SOON_DAYS", default=7)
