"""Leasing rebill jobs and keeping the leases alive.

A worker leases a batch of one shard's jobs (queue, merchant) with SELECT … FOR UPDATE SKIP
LOCKED, so concurrent workers never take the same job, and marks them leased (owner, lease
expiry) in the same short transaction. While it works, a heartbeat thread extends the
leases of every job it holds; a worker that dies stops heartbeating, its leases expire and
the reaper (services.scheduling.rebill_reap_stale) re-queues the jobs.
"""

import datetime as dt
import logging
import os
import socket
import threading
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from subscriptions.models import RebillJob, RebillJobStatus
from subscriptions.services.rebill import rebill_job_run

logger = logging.getLogger(__name__)

JS = RebillJobStatus
LEASE_FIELDS = ["status", "lease_owner", "leased_at", "heartbeat_at", "lease_expires_at", "leases", "updated_at"]


def worker_identity(prefix: str = "worker") -> str:
    """A lease owner unique to this process and call: host, pid and a random suffix."""
    return f"{prefix}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def rebill_lease_batch(*, queue: str, merchant_id: int | None, owner: str, limit: int | None = None) -> list[int]:
    """Lease up to `limit` queued, due jobs of one shard (oldest first). Two queries
    whatever the batch size: the locking SELECT and one bulk UPDATE."""
    now = timezone.now()
    expires_at = now + dt.timedelta(seconds=settings.FLOWPAY_REBILL_LEASE_SECONDS)
    with transaction.atomic():
        query = RebillJob.objects.select_for_update(skip_locked=True).filter(status=JS.QUEUED, queue=queue, run_at__lte=now)
        if merchant_id is not None:
            query = query.filter(merchant_id=merchant_id)
        jobs = list(query.order_by("run_at", "id")[: limit or settings.FLOWPAY_REBILL_BATCH_SIZE])
        for job in jobs:
            job.lease(owner=owner, now=now, expires_at=expires_at)
            job.updated_at = now
        if jobs:
            RebillJob.objects.bulk_update(jobs, LEASE_FIELDS)
    return [job.pk for job in jobs]


def rebill_heartbeat(*, owner: str) -> int:
    """Extend the lease of every job `owner` holds. Rows locked elsewhere are skipped (they
    are being finished right now), so a heartbeat never waits."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            RebillJob.objects.select_for_update(skip_locked=True)
            .filter(status=JS.LEASED, lease_owner=owner)
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        return RebillJob.objects.filter(pk__in=ids, status=JS.LEASED, lease_owner=owner).update(
            heartbeat_at=now, lease_expires_at=now + dt.timedelta(seconds=settings.FLOWPAY_REBILL_LEASE_SECONDS), updated_at=now
        )


class LeaseHeartbeat:
    """`with LeaseHeartbeat(owner):` — a daemon thread heartbeats every
    FLOWPAY_REBILL_HEARTBEAT_SECONDS while the block runs (on its own database connection,
    closed when the block ends)."""

    def __init__(self, owner: str, interval: float | None = None):
        self.owner = owner
        self.interval = settings.FLOWPAY_REBILL_HEARTBEAT_SECONDS if interval is None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rebill-heartbeat-{owner[-8:]}", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    rebill_heartbeat(owner=self.owner)
                except Exception:  # a missed beat only shortens the lease; keep beating
                    logger.exception("rebill heartbeat failed", extra={"owner": self.owner})
        finally:
            connection.close()

    def __enter__(self) -> "LeaseHeartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def rebill_drain(*, queue: str, merchant_id: int | None, owner: str | None = None, max_batches: int = 10_000) -> dict:
    """Lease and run one shard's due jobs, batch after batch, until none is left."""
    owner = owner or worker_identity()
    counts: dict[str, int] = {}
    with LeaseHeartbeat(owner):
        for _ in range(max_batches):
            job_ids = rebill_lease_batch(queue=queue, merchant_id=merchant_id, owner=owner)
            if not job_ids:
                break
            for job_id in job_ids:
                outcome = rebill_job_run(job_id=job_id, owner=owner)
                counts[outcome] = counts.get(outcome, 0) + 1
    return counts
