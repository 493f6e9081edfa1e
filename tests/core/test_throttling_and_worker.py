"""Per-key rate limits, and the Celery app running a real worker against Redis."""

import os
import time

import pytest
from django.utils import timezone

from core.api.throttling import ApiKeyRateThrottle
from core.models import IdempotencyRecord
from tests.support.processes import start_celery_worker, stop_process


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

    from core.tasks import purge_idempotency_keys_task

    IdempotencyRecord.objects.create(
        scope="merchant:1", key="stale", fingerprint="f", method="POST", path="/payment/transactions",
        locked_at=timezone.now(),
    )
    IdempotencyRecord.objects.filter(key="stale").update(created_at=timezone.now() - dt.timedelta(hours=30))
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    worker = start_celery_worker(queue)
    try:
        purge_idempotency_keys_task.apply_async(queue=queue)
        deadline = time.monotonic() + 60
        while IdempotencyRecord.objects.filter(key="stale").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not IdempotencyRecord.objects.filter(key="stale").exists(), "the worker did not run the task"
    finally:
        stop_process(worker)
