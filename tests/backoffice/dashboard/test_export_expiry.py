"""Written exports are deleted after FLOWPAY_EXPORT_RETENTION_DAYS: the file goes, the export
is `expired` (no longer downloadable) and the expiry is audited; younger exports, exports
not ready and the files of exports still being written stay."""

import datetime as dt
import os

import pytest
from celery.schedules import crontab
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from backoffice.dashboard.exports.models import ExportJob, ExportStatus
from backoffice.dashboard.exports.services import export_job_run, exports_expire
from backoffice.dashboard.exports.tasks import EXPORT_TASK_TIME_LIMIT_SECONDS
from core.actors import Actor
from payments.services.transactions import PaymentInput, transaction_create

pytestmark = pytest.mark.django_db

EXPORT = reverse("admin:payments_transaction_export_csv")


@pytest.fixture
def written_exports(role_client, settings, tmp_path, monkeypatch, merchant_a):
    """Two ready exports of the finance user's, their files on disk."""
    settings.FLOWPAY_EXPORT_STREAM_MAX_ROWS = 0
    settings.FLOWPAY_EXPORT_DIR = tmp_path
    monkeypatch.setattr("backoffice.dashboard.exports.services._queue", lambda pk: None)
    transaction_create(merchant=merchant_a.merchant, actor=Actor.system("test"),
                       payment=PaymentInput(amount=1500, currency="USD", payment_method="pm_card_visa"))
    client = role_client("finance")
    for _ in range(2):
        client.get(EXPORT)
    jobs = list(ExportJob.objects.order_by("id"))
    for job in jobs:
        export_job_run(export_id=job.pk)
        job.refresh_from_db()
    return client, jobs


def _finished(job: ExportJob, *, days_ago: float) -> None:
    ExportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - dt.timedelta(days=days_ago))


def test_an_export_past_its_retention_is_deleted_expired_and_audited(written_exports, settings, django_capture_on_commit_callbacks):
    client, (old, recent) = written_exports
    settings.FLOWPAY_EXPORT_RETENTION_DAYS = 7
    _finished(old, days_ago=8)
    _finished(recent, days_ago=6)
    old_file, recent_file = settings.FLOWPAY_EXPORT_DIR / old.file_name, settings.FLOWPAY_EXPORT_DIR / recent.file_name
    assert old_file.exists() and recent_file.exists()

    with django_capture_on_commit_callbacks(execute=True):
        assert exports_expire() == 1

    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, recent.status) == (ExportStatus.EXPIRED, ExportStatus.READY)
    assert not old_file.exists() and recent_file.exists()
    entry = AuditEntry.objects.get(action="export.expire")
    assert (entry.object_id, entry.actor_type, entry.details["retention_days"]) == (old.public_id, "worker", 7)
    # the expired one is no longer offered nor served; the other still is
    assert client.get(reverse("admin:dashboard_export_download", args=[old.public_id])).status_code == 404
    assert client.get(reverse("admin:dashboard_export_download", args=[recent.public_id])).status_code == 200
    page = client.get(reverse("admin:dashboard_exports")).content.decode()
    assert "deleted 7 days after they are ready" in page

    # a second run has nothing left to do and audits nothing more
    with django_capture_on_commit_callbacks(execute=True):
        assert exports_expire() == 0
    assert AuditEntry.objects.filter(action="export.expire").count() == 1


def test_exports_not_ready_are_left_alone_and_a_dead_workers_partial_file_is_removed_only_when_old(
    written_exports, settings, django_capture_on_commit_callbacks,
):
    _client, (failed, queued) = written_exports
    ExportJob.objects.filter(pk=failed.pk).update(status=ExportStatus.FAILED, error="the list was refused",
                                                  finished_at=timezone.now() - dt.timedelta(days=30))
    ExportJob.objects.filter(pk=queued.pk).update(status=ExportStatus.QUEUED, finished_at=None)
    directory = settings.FLOWPAY_EXPORT_DIR
    abandoned, in_progress = directory / "exp_abandoned.partial", directory / "exp_writing.partial"
    abandoned.write_text("id\n")
    in_progress.write_text("id\n")
    long_ago = (timezone.now() - dt.timedelta(seconds=2 * EXPORT_TASK_TIME_LIMIT_SECONDS + 60)).timestamp()
    os.utime(abandoned, (long_ago, long_ago))

    with django_capture_on_commit_callbacks(execute=True):
        assert exports_expire() == 0

    assert set(ExportJob.objects.values_list("status", flat=True)) == {ExportStatus.FAILED, ExportStatus.QUEUED}
    assert not abandoned.exists() and in_progress.exists()
    assert not AuditEntry.objects.filter(action="export.expire").exists()


def test_beat_expires_exports_nightly(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["dashboard-exports-expire"]
    assert entry["task"] == "dashboard.exports_expire" and entry["schedule"] == crontab(minute=15, hour=2)
