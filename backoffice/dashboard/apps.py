from auditlog.apps import AuditlogConfig
from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "backoffice.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"
    default_auto_field = "django.db.models.BigAutoField"


class AdminEditHistoryConfig(AuditlogConfig):
    """django-auditlog under a name of its own: its app is called "Audit log" too, which put
    two "Audit log" groups in the admin beside FlowPay's append-only log (the `audit` app)."""

    verbose_name = "Admin edit history"
