"""Exports of a list's whole filtered set (the changelist's filters, never its page).

Up to FLOWPAY_EXPORT_STREAM_MAX_ROWS rows the CSV is streamed in the response; above, an
ExportJob is queued and a worker writes the file. Either way rows are read with
`values_list(...).iterator(chunk_size=…)` (a PostgreSQL server-side cursor), so memory does
not grow with the row count, and each export is audited with who asked, what and with
which filters.

The worker rebuilds the list as the requester sees it: the list's own ModelAdmin, given a
request carrying the requester and the saved query string, so the filters, the search and
the requester's permission are the list's own, applied again when the file is written."""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Iterable, Iterator

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from backoffice.dashboard.exports.columns import ExportColumn, export_headers, export_paths, export_rows
from backoffice.dashboard.exports.models import ExportJob, ExportStatus
from backoffice.dashboard.exports.tasks import EXPORT_TASK_TIME_LIMIT_SECONDS
from core.actors import Actor
from core.errors import InvalidRequest, NotFound

EXPORT_TASK_ACTOR = "dashboard.export_csv"
EXPIRY_TASK_ACTOR = "dashboard.exports_expire"


class _Line:
    """csv.writer's file: hands back each line instead of storing it."""

    def write(self, text: str) -> str:
        return text


def export_csv_lines(*, columns: list[ExportColumn], queryset: QuerySet) -> Iterator[str]:
    """The CSV, header first, one line at a time (streamed or written to a file)."""
    writer = csv.writer(_Line())
    yield writer.writerow(export_headers(columns))
    rows = queryset.values_list(*export_paths(columns)).iterator(chunk_size=settings.FLOWPAY_EXPORT_CHUNK_ROWS)
    for cells in export_rows(columns, rows):
        yield writer.writerow(cells)


def export_row_count_capped(*, queryset: QuerySet, cap: int) -> int:
    """The number of rows, counted up to `cap` + 1 only (a huge list is not counted in full)."""
    return queryset.order_by().values("pk")[: cap + 1].count()


def changelist_queryset(*, model_admin, request) -> QuerySet:
    """The list's whole filtered (and searched) set, as its changelist computes it."""
    return model_admin.get_changelist_instance(request).get_queryset(request)


def _list_label(model_admin) -> str:
    return model_admin.model._meta.label_lower


@transaction.atomic
def export_stream_record(*, model_admin, query_string: str, rows: int, actor: Actor) -> None:
    """Audit a streamed export (the response that follows carries the rows)."""
    audit_record(
        actor=actor, action=AuditAction.EXPORT_REQUEST,
        details={"list": _list_label(model_admin), "filters": query_string[:1000], "rows": rows, "delivery": "streamed"},
    )


@transaction.atomic
def export_job_request(*, model_admin, user, query_string: str, rows_at_least: int, actor: Actor) -> ExportJob:
    """Queue an export too large to stream; the worker writes it (export_job_run)."""
    if len(query_string) > ExportJob._meta.get_field("query_string").max_length:
        raise InvalidRequest("These filters are too long to export; narrow the list first.")
    job = ExportJob.objects.create(requested_by=user, model_label=_list_label(model_admin), query_string=query_string)
    audit_record(
        actor=actor, action=AuditAction.EXPORT_REQUEST, target=job,
        details={"list": job.model_label, "filters": query_string[:1000], "rows_at_least": rows_at_least,
                 "delivery": "file"},
    )
    transaction.on_commit(lambda: _queue(job.pk))
    return job


def _queue(export_id: int) -> None:
    from backoffice.dashboard.exports.tasks import export_csv_task

    export_csv_task.apply_async(args=[export_id], queue=settings.FLOWPAY_EXPORT_QUEUE)


def export_file_path(job: ExportJob):
    return settings.FLOWPAY_EXPORT_DIR / job.file_name


def _requester_queryset(job: ExportJob) -> tuple[object, QuerySet]:
    model = apps.get_model(job.model_label)
    model_admin = admin.site._registry[model]
    opts = model._meta
    request = RequestFactory().get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                                   QueryDict(job.query_string))
    request.user = job.requested_by
    if not model_admin.has_view_permission(request):
        raise InvalidRequest(f"{job.requested_by} may no longer see this list.")
    return model_admin, changelist_queryset(model_admin=model_admin, request=request)


def export_job_run(*, export_id: int) -> ExportJob:
    """Write a queued export's file. Claimed with one conditional UPDATE: a redelivered
    task finds it taken, unless its claim is older than the task's hard time limit (the
    worker that held it died), when it is taken over and written again from the start."""
    now = timezone.now()
    abandoned = now - dt.timedelta(seconds=EXPORT_TASK_TIME_LIMIT_SECONDS)
    claimed = (ExportJob.objects.filter(pk=export_id)
               .filter(Q(status=ExportStatus.QUEUED) | Q(status=ExportStatus.RUNNING, started_at__lt=abandoned))
               .update(status=ExportStatus.RUNNING, started_at=now))
    job = ExportJob.objects.select_related("requested_by").get(pk=export_id)
    if not claimed:
        return job
    file_name = f"{job.public_id}.csv"
    target = settings.FLOWPAY_EXPORT_DIR / file_name
    partial = target.with_suffix(".partial")
    try:
        model_admin, queryset = _requester_queryset(job)
        settings.FLOWPAY_EXPORT_DIR.mkdir(parents=True, exist_ok=True)
        rows = _write(partial, export_csv_lines(columns=model_admin.export_columns, queryset=queryset))
        os.replace(partial, target)  # the file appears whole or not at all
    except Exception as exc:
        partial.unlink(missing_ok=True)
        ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.FAILED, error=str(exc)[:500] or type(exc).__name__,
                                                  finished_at=timezone.now())
        raise
    with transaction.atomic():
        ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.READY, row_count=rows, file_name=file_name,
                                                  finished_at=timezone.now())
        job.refresh_from_db()
        audit_record(actor=Actor.worker(EXPORT_TASK_ACTOR), action=AuditAction.EXPORT_COMPLETE, target=job,
                     details={"list": job.model_label, "rows": rows, "requested_by": job.requested_by.get_username()})
    return job


def _write(path, lines: Iterable[str]) -> int:
    """Write the lines; returns the number of data rows (the header excluded)."""
    count = -1
    with open(path, "w", encoding="utf-8", newline="") as out:
        for line in lines:
            out.write(line)
            count += 1
    return max(count, 0)


def export_jobs_of(user, *, limit: int = 50) -> QuerySet:
    return ExportJob.objects.filter(requested_by=user).order_by("-created_at", "-id")[:limit]


@transaction.atomic
def export_job_download(*, public_id: str, user, actor: Actor) -> ExportJob:
    """The requester's ready export (anyone else's is not found), its download audited."""
    job = ExportJob.objects.filter(public_id=public_id, requested_by=user, status=ExportStatus.READY).first()
    if job is None or not export_file_path(job).exists():
        raise NotFound("No such export is ready for you.")
    audit_record(actor=actor, action=AuditAction.EXPORT_DOWNLOAD, target=job,
                 details={"list": job.model_label, "rows": job.row_count})
    return job


def exports_expire(*, now: dt.datetime | None = None) -> int:
    """Expire the ready exports finished more than FLOWPAY_EXPORT_RETENTION_DAYS ago: each is
    marked `expired` by a conditional UPDATE (a download under way keeps the file it opened;
    a second expiry run finds nothing) and audited, and its file deleted once that commits.
    Also deletes the `.partial` files that workers which died mid-export left, once older
    than twice the export task's time limit. Returns the number of exports expired."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.FLOWPAY_EXPORT_RETENTION_DAYS)
    actor = Actor.worker(EXPIRY_TASK_ACTOR)
    expired = 0
    due = ExportJob.objects.filter(status=ExportStatus.READY, finished_at__lt=cutoff).values_list("pk", flat=True)
    for export_id in list(due.iterator()):
        with transaction.atomic():
            if not ExportJob.objects.filter(pk=export_id, status=ExportStatus.READY).update(status=ExportStatus.EXPIRED):
                continue
            job = ExportJob.objects.get(pk=export_id)
            audit_record(actor=actor, action=AuditAction.EXPORT_EXPIRE, target=job, details={
                "list": job.model_label, "rows": job.row_count, "finished_at": job.finished_at.isoformat(),
                "retention_days": settings.FLOWPAY_EXPORT_RETENTION_DAYS,
            })
            path = export_file_path(job)
            transaction.on_commit(lambda path=path: path.unlink(missing_ok=True))
        expired += 1
    _partial_files_remove(older_than=now - dt.timedelta(seconds=2 * EXPORT_TASK_TIME_LIMIT_SECONDS))
    return expired


def _partial_files_remove(*, older_than: dt.datetime) -> None:
    directory = settings.FLOWPAY_EXPORT_DIR
    if not directory.is_dir():
        return
    for path in directory.glob("*.partial"):
        try:
            if path.stat().st_mtime < older_than.timestamp():
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass  # removed meanwhile (its export finished or failed)
