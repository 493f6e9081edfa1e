"""An export too large to stream: queued, written to a file by a worker, downloaded by the
staff user who asked for it."""

from django.conf import settings
from django.db import models

from core.models import new_public_id


def _export_id() -> str:
    return new_public_id("exp")


class ExportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"
    EXPIRED = "expired"  # was ready; its file deleted after the retention period


class ExportJob(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=_export_id, editable=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    model_label = models.CharField(max_length=100)  # the list exported: "payments.transaction"
    query_string = models.CharField(max_length=4000, blank=True)  # the list's filters, as in its URL
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True)  # under FLOWPAY_EXPORT_DIR
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)  # claimed by a worker
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "export"
        indexes = [models.Index(fields=["requested_by", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="ready") | (models.Q(row_count__isnull=False) & ~models.Q(file_name="")),
                name="export_ready_has_file",
            ),
            models.CheckConstraint(condition=~models.Q(status="failed") | ~models.Q(error=""), name="export_failed_has_error"),
        ]

    def __str__(self) -> str:
        return self.public_id
