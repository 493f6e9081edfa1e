"""Reconciliation tasks (queue `reconciliation`, see CELERY_TASK_ROUTES).

Beat sends `reconciliation.schedule_daily` at FLOWPAY_RECONCILIATION_HOUR_UTC:
FLOWPAY_RECONCILIATION_MINUTE_UTC; it queues one `reconciliation.reconcile_day` per enabled
gateway for the previous day (in FLOWPAY_RECONCILIATION_TIME_ZONE). A run that fails because
the gateway or the database is away is retried with exponential backoff and jitter (60 s
doubling, at most an hour, FLOWPAY_RECONCILIATION_MAX_RETRIES times); a run that finds the
day already reconciled does nothing (a re-delivered message never reconciles twice), and one
that finds another run of the same day in progress leaves the day to it.

Tasks import the services inside their bodies (see refunds.tasks)."""

import datetime as dt
import logging
import random
from zoneinfo import ZoneInfo

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from core.actors import Actor
from gateways.base import GatewayError

logger = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 60
RETRY_CAP_SECONDS = 3600


def retry_countdown(retries: int) -> float:
    """60 s, 120 s, 240 s … at most an hour, with ±20 % jitter."""
    return min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**retries) * random.uniform(0.8, 1.2)


@shared_task(bind=True, name="reconciliation.reconcile_day", acks_late=True, reject_on_worker_lost=True,
             time_limit=3600, soft_time_limit=3300, ignore_result=True)
def reconcile_day_task(self, gateway: str, date: str) -> str:
    from reconciliation.services.runs import ReconciliationInProgress, reconciliation_run  # in the body

    try:
        report = reconciliation_run(gateway=gateway, settlement_date=dt.date.fromisoformat(date),
                                    actor=Actor.worker("reconciliation.reconcile_day"))
    except ReconciliationInProgress:
        logger.info("reconciliation already running elsewhere", extra={"gateway": gateway, "date": date})
        return "in_progress"
    except (GatewayError, OperationalError) as exc:
        logger.warning("reconciliation failed; retrying", extra={"gateway": gateway, "date": date, "error": str(exc)[:300],
                                                               "retries": self.request.retries})
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries),
                         max_retries=settings.FLOWPAY_RECONCILIATION_MAX_RETRIES) from None
    run = report.run
    if report.discrepancies:
        logger.warning("reconciliation found discrepancies", extra={
            "gateway": gateway, "date": date, "run": run.public_id, "counts": report.counts})
    return run.public_id


@shared_task(name="reconciliation.schedule_daily", ignore_result=True)
def reconcile_previous_day_task() -> list[str]:
    """One reconcile_day per enabled gateway, for yesterday in the reconciliation time zone."""
    today = timezone.now().astimezone(ZoneInfo(settings.FLOWPAY_RECONCILIATION_TIME_ZONE)).date()
    day = (today - dt.timedelta(days=1)).isoformat()
    for gateway in settings.FLOWPAY_GATEWAYS:
        reconcile_day_task.delay(gateway, day)
    return list(settings.FLOWPAY_GATEWAYS)
