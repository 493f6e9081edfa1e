"""Beat tasks keeping the overview's rollup current (flowpay/settings/celery.py)."""

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone


@shared_task(name="dashboard.rollup_refresh", ignore_result=True, time_limit=600, soft_time_limit=540)
def rollup_refresh_task() -> int:
    from backoffice.dashboard.rollup import dashboard_rollup_refresh

    return dashboard_rollup_refresh().buckets


@shared_task(name="dashboard.rollup_settle", ignore_result=True, time_limit=3600, soft_time_limit=3500)
def rollup_settle_task() -> int:
    from backoffice.dashboard.rollup import dashboard_rollup_rebuild

    now = timezone.now()
    return dashboard_rollup_rebuild(start=now - dt.timedelta(days=settings.FLOWPAY_DASHBOARD_ROLLUP_SETTLE_DAYS), end=now).buckets
