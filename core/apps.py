from django.apps import AppConfig
from django.db.models.signals import pre_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "FlowPay platform"

    def ready(self) -> None:
        from core import checks  # noqa: F401  (registers the settings system checks)

        # Wires the correlation id through Celery task headers (infrastructure, not business).
        from core.api import schema  # noqa: F401  (OpenAPI extensions)
        from core.observability import celery_signals  # noqa: F401

        # FlowPay's PostgreSQL schema exists before any migration creates a table in it.
        pre_migrate.connect(_schema_ensure_before_migrations, dispatch_uid="flowpay-schema-ensure")


def _schema_ensure_before_migrations(sender, using: str = "default", **kwargs) -> None:
    from django.db import connections

    from core.schema import schema_ensure

    schema_ensure(connection=connections[using])
