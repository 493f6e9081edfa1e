from django.apps import AppConfig
from django.db.models.signals import post_migrate


class FraudConfig(AppConfig):
    name = "fraud"
    verbose_name = "Fraud screening"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fraud import checks  # noqa: F401  (registers the system checks)

        # The platform rules FlowPay ships exist after every migrate, and after every flush
        # (Django's flush emits post_migrate too), the way Django keeps its permissions.
        post_migrate.connect(_install_platform_rules, sender=self)


def _install_platform_rules(sender, using="default", **kwargs) -> None:
    from fraud.screening.rules import platform_rules_install

    platform_rules_install(using=using)
