from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "FlowPay platform"

    def ready(self) -> None:
        from core import checks  # noqa: F401  (registers the settings system checks)

        # Wires the correlation id through Celery task headers (infrastructure, not business).
        from core.api import schema  # noqa: F401  (OpenAPI extensions)
        from core.observability import celery_signals  # noqa: F401
