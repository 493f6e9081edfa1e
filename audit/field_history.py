"""django-auditlog's app, named for what it holds (each model field's history), so that the
back office does not show two sections called "Audit log": ours is the business log
(audit.AuditEntry). INSTALLED_APPS names this config instead of "auditlog"."""

from auditlog.apps import AuditlogConfig


class FieldHistoryConfig(AuditlogConfig):
    verbose_name = "Field history"
