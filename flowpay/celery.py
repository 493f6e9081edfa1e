"""The Celery app `flowpay`: `celery -A flowpay worker -B`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowpay.settings")

app = Celery("flowpay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
