from django.apps import AppConfig


class FlowPayConfig(AppConfig):
    name = "flowpay"
    verbose_name = "FlowPay platform"

    def ready(self) -> None:
        # Wires the correlation id through Celery task headers (infrastructure, not business).
        from flowpay.api import schema  # noqa: F401  (OpenAPI extensions)
        from flowpay.observability import celery_signals  # noqa: F401
