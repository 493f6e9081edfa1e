"""Admin for the audit trails: the business audit log (AuditEntry) and django-auditlog's
field history (LogEntry). Both are evidence, so the admin only ever shows them."""

from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter

from audit.models import AuditEntry, AuditSeal
from core.admin import ReadOnlyModelAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyModelAdmin):
    # Append-only (model and PostgreSQL trigger refuse changes): no bulk actions at all,
    # so not even a "delete selected" is offered.
    actions = None
    list_display = [
        "occurred_at", "actor_type", "actor_id", "merchant", "action",
        "object_type", "object_id", "result", "correlation_id",
    ]
    list_filter = ["actor_type", "action", "result", ("occurred_at", RangeDateTimeFilter)]
    list_filter_submit = True  # the date range filter needs a submit button
    search_fields = ["object_id", "actor_id", "correlation_id"]
    list_select_related = ["merchant"]
    show_full_result_count = False  # the log grows without bound; skip the extra COUNT(*)


# django-auditlog ships its own LogEntry admin; register it again on unfold's ModelAdmin
# so that it looks like the rest of the back-office. Its permissions (view only) are kept.
if admin.site.is_registered(LogEntry):
    admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class LogEntryAdmin(AuditlogLogEntryAdmin, ModelAdmin):
    pass


@admin.register(AuditSeal)
class AuditSealAdmin(ReadOnlyModelAdmin):
    """The hash chain over the audit log (verify it with `manage.py verify_audit_log`)."""

    actions = None
    list_display = ["last_entry_id", "entry_count", "hash", "key_id", "sealed_at"]
