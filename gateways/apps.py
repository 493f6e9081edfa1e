from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "gateways"
    verbose_name = "Gateways"

    def ready(self) -> None:
        from gateways import registry  # noqa: F401  (registers the gateway system check)
