"""Per-key rate limits, and the Celery app running a real worker against Redis."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from flowpay.api.throttling import ApiKeyRateThrottle
from payments.models import IdempotencyRecord


@pytest.mark.django_db
def test_requests_beyond_the_key_rate_limit_get_429(merchant_a, merchant_b, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    codes = [merchant_a.client.get("/payment/transactions").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = merchant_a.client.get("/payment/transactions")
    assert limited.json()["error"]["type"] == "rate_limit_error" and int(limited["Retry-After"]) > 0
    assert merchant_b.client.get("/payment/transactions").status_code == 200  # per key, not global


@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_runs_the_idempotency_purge(tmp_path):
    import datetime as dt

    from payments.tasks import purge_idempotency_keys_task

    IdempotencyRecord.objects.create(
        scope="merchant:1", key="stale", fingerprint="f", method="POST", path="/payment/transactions",
        locked_at=timezone.now(),
    )
    IdempotencyRecord.objects.filter(key="stale").update(created_at=timezone.now() - dt.timedelta(hours=30))
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "DEBUG": "0",
        "SECRET_KEY": "test",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "flowpay", "worker", "--pool=solo", "-Q", queue, "--loglevel=WARNING",
         "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=Path(django_settings.BASE_DIR), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        purge_idempotency_keys_task.apply_async(queue=queue)
        deadline = time.monotonic() + 60
        while IdempotencyRecord.objects.filter(key="stale").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not IdempotencyRecord.objects.filter(key="stale").exists(), "the worker did not run the task"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
