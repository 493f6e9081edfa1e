from django.apps import AppConfig


class DashboardExportsConfig(AppConfig):
    name = "backoffice.dashboard.exports"
    label = "dashboard_exports"
    verbose_name = "Exports"
