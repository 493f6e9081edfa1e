"""Celery: broker, task routes and limits, the beat schedule (flowpay/celery.py reads CELERY_*)."""

from datetime import timedelta

from celery.schedules import crontab

from flowpay.settings.backoffice_pages import FLOWPAY_EXPORT_EXPIRY_HOUR_UTC
from flowpay.settings.base import RUN_DIR, env
from flowpay.settings.dashboard import FLOWPAY_DASHBOARD_ROLLUP_INTERVAL_SECONDS, FLOWPAY_DASHBOARD_ROLLUP_SETTLE_HOUR_UTC
from flowpay.settings.database import REDIS_URL
from flowpay.settings.ledger import (
    FLOWPAY_LEDGER_RELEASE_INTERVAL_SECONDS,
    FLOWPAY_LEDGER_VERIFY_HOUR_UTC,
    FLOWPAY_PAYOUT_CHECK_INTERVAL_SECONDS,
    FLOWPAY_PAYOUT_SCHEDULE_HOUR_UTC,
)
from flowpay.settings.reconciliation import FLOWPAY_RECONCILIATION_HOUR_UTC, FLOWPAY_RECONCILIATION_MINUTE_UTC

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
# kombu's filesystem transport (make run without Redis) keeps its messages under RUN_DIR.
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = RUN_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues: default, payments (money tasks), webhooks (merchant deliveries), rebill.daily|weekly|
# monthly|yearly (rebill drains, sent explicitly per plan frequency), reconciliation.
CELERY_TASK_ROUTES = {
    "refunds.execute": {"queue": "payments"},
    "refunds.requeue_stalled": {"queue": "payments"},
    "subscriptions.rebill_schedule": {"queue": "default"},
    "subscriptions.rebill_reap": {"queue": "default"},
    "ledger.release_available_funds": {"queue": "payments"},
    "ledger.payout_send": {"queue": "payments"},
    "ledger.payout_follow_up": {"queue": "payments"},
    "ledger.create_scheduled_payouts": {"queue": "payments"},
    "reconciliation.reconcile_day": {"queue": "reconciliation"},
    "reconciliation.schedule_daily": {"queue": "reconciliation"},
}
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep our JSON logging (with correlation ids) in workers instead of Celery's plain text.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# How often beat sends its periodic tasks.
FLOWPAY_STUCK_CHECK_INTERVAL_SECONDS = env.int("FLOWPAY_STUCK_CHECK_INTERVAL_SECONDS", default=20)
FLOWPAY_REBILL_SCHEDULE_INTERVAL_SECONDS = env.int("FLOWPAY_REBILL_SCHEDULE_INTERVAL_SECONDS", default=60)
FLOWPAY_REBILL_REAP_INTERVAL_SECONDS = env.int("FLOWPAY_REBILL_REAP_INTERVAL_SECONDS", default=30)
FLOWPAY_AUDIT_SEAL_INTERVAL_SECONDS = env.int("FLOWPAY_AUDIT_SEAL_INTERVAL_SECONDS", default=5)
FLOWPAY_WEBHOOK_SWEEP_INTERVAL_SECONDS = env.int("FLOWPAY_WEBHOOK_SWEEP_INTERVAL_SECONDS", default=10)
FLOWPAY_REFUND_REQUEUE_INTERVAL_SECONDS = env.int("FLOWPAY_REFUND_REQUEUE_INTERVAL_SECONDS", default=20)
FLOWPAY_IDEMPOTENCY_PURGE_INTERVAL_SECONDS = env.int("FLOWPAY_IDEMPOTENCY_PURGE_INTERVAL_SECONDS", default=3600)
FLOWPAY_INBOUND_EVENT_REQUEUE_INTERVAL_SECONDS = env.int("FLOWPAY_INBOUND_EVENT_REQUEUE_INTERVAL_SECONDS", default=300)

# Beat without a single point of failure: with Redis, the schedule and each entry's last run
# live in Redis (celery-redbeat) and a Redis lock lets one beat send at a time, so several
# beat replicas can run. The active one renews the lock every tick (at most every
# CELERY_BEAT_MAX_LOOP_INTERVAL seconds); a standby retries the lock every loop interval and
# takes over within FLOWPAY_BEAT_LOCK_TIMEOUT_SECONDS (plus one interval) of the active one
# dying. Without Redis (make run) a single beat keeps its schedule in a file.
FLOWPAY_BEAT_LOCK_TIMEOUT_SECONDS = env.int("FLOWPAY_BEAT_LOCK_TIMEOUT_SECONDS", default=30)
CELERY_BEAT_MAX_LOOP_INTERVAL = env.int("FLOWPAY_BEAT_MAX_LOOP_INTERVAL_SECONDS", default=5)
CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler" if REDIS_URL else "celery.beat:PersistentScheduler"
CELERY_REDBEAT_REDIS_URL = REDIS_URL
CELERY_REDBEAT_KEY_PREFIX = env.str("FLOWPAY_BEAT_KEY_PREFIX", default="flowpay:beat:")
CELERY_REDBEAT_LOCK_TIMEOUT = FLOWPAY_BEAT_LOCK_TIMEOUT_SECONDS

CELERY_BEAT_SCHEDULE_FILENAME = str(RUN_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "purge-idempotency-keys": {
        "task": "payments.purge_idempotency_keys",
        "schedule": timedelta(seconds=FLOWPAY_IDEMPOTENCY_PURGE_INTERVAL_SECONDS),
    },
    # Payments whose gateway answer is missing are asked about at their gateway (the cadence
    # and FLOWPAY_STUCK_CHECK_AFTER_SECONDS settle "nothing sent" and "no record" in < 2 min).
    "check-stuck-transactions": {
        "task": "payments.check_stuck_transactions",
        "schedule": timedelta(seconds=FLOWPAY_STUCK_CHECK_INTERVAL_SECONDS),
    },
    # Refunds and inbound gateway events whose task was lost (broker outage, killed worker).
    "refunds-requeue-stalled": {
        "task": "refunds.requeue_stalled", "schedule": timedelta(seconds=FLOWPAY_REFUND_REQUEUE_INTERVAL_SECONDS),
    },
    "inbound-events-requeue-stalled": {"task": "payments.requeue_stalled_inbound_events", "schedule": timedelta(seconds=FLOWPAY_INBOUND_EVENT_REQUEUE_INTERVAL_SECONDS)},
    # Invoice due periods, queue due dunning retries, dispatch drains per billing frequency;
    # the reaper re-queues rebill jobs whose worker stopped heartbeating.
    "rebill-schedule": {
        "task": "subscriptions.rebill_schedule",
        "schedule": timedelta(seconds=FLOWPAY_REBILL_SCHEDULE_INTERVAL_SECONDS),
    },
    "rebill-reap-stale-leases": {
        "task": "subscriptions.rebill_reap",
        "schedule": timedelta(seconds=FLOWPAY_REBILL_REAP_INTERVAL_SECONDS),
    },
    # Staff lockouts whose time is up are released (and audited) when it is, not at the next sign-in.
    "staff-lockouts-release-expired": {"task": "accounts.release_expired_lockouts", "schedule": timedelta(minutes=1)},
    # Seal audit entries into the keyed hash chain within seconds (verify_audit_log checks it).
    "audit-seal": {"task": "audit.seal", "schedule": timedelta(seconds=FLOWPAY_AUDIT_SEAL_INTERVAL_SECONDS)},
    # Reconcile the previous day of every enabled gateway (reconciliation.tasks).
    "reconciliation-daily": {
        "task": "reconciliation.schedule_daily",
        "schedule": crontab(hour=FLOWPAY_RECONCILIATION_HOUR_UTC, minute=FLOWPAY_RECONCILIATION_MINUTE_UTC),
    },
    # Relay outbox events a lost kick left behind; send due webhook retries.
    "webhooks-sweep": {
        "task": "webhooks.sweep",
        "schedule": timedelta(seconds=FLOWPAY_WEBHOOK_SWEEP_INTERVAL_SECONDS),
    },
    # The ledger: captured funds become available after the merchant's delay; payouts whose
    # call failed are sent again and payouts in transit followed up; the daily and weekly
    # payout schedules; verify_ledger every night (its result is a metric with an alert).
    "ledger-release-available-funds": {
        "task": "ledger.release_available_funds", "schedule": timedelta(seconds=FLOWPAY_LEDGER_RELEASE_INTERVAL_SECONDS),
    },
    "ledger-sweep-payouts": {"task": "ledger.sweep_payouts", "schedule": timedelta(seconds=FLOWPAY_PAYOUT_CHECK_INTERVAL_SECONDS)},
    "ledger-scheduled-payouts": {
        "task": "ledger.create_scheduled_payouts", "schedule": crontab(minute=0, hour=FLOWPAY_PAYOUT_SCHEDULE_HOUR_UTC),
    },
    "ledger-verify": {"task": "backoffice.verify_ledger", "schedule": crontab(minute=0, hour=FLOWPAY_LEDGER_VERIFY_HOUR_UTC)},
    # The dashboard's hourly rollup: the recent hours (and late rows) every minute, the last
    # days again every night for outcomes that arrive late (backoffice.dashboard.rollup).
    "dashboard-rollup-refresh": {
        "task": "dashboard.rollup_refresh", "schedule": timedelta(seconds=FLOWPAY_DASHBOARD_ROLLUP_INTERVAL_SECONDS),
    },
    "dashboard-rollup-settle": {
        "task": "dashboard.rollup_settle", "schedule": crontab(minute=30, hour=FLOWPAY_DASHBOARD_ROLLUP_SETTLE_HOUR_UTC),
    },
    # Export files past FLOWPAY_EXPORT_RETENTION_DAYS deleted (backoffice.dashboard.exports).
    "dashboard-exports-expire": {
        "task": "dashboard.exports_expire", "schedule": crontab(minute=15, hour=FLOWPAY_EXPORT_EXPIRY_HOUR_UTC),
    },
}
