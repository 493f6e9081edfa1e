from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Merchants and credentials"

    def ready(self) -> None:
        from accounts import auditlog_registry  # noqa: F401  (registers admin edit history)
