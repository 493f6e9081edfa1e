"""The admin application with FlowPay's site as its default (`admin.site`), so that every
`@admin.register` lands on the site that requires a second factor (backoffice.admin_site).

Kept apart from the site itself: INSTALLED_APPS imports this module before the models are
loaded, and the site's module imports models."""

from django.contrib.admin.apps import AdminConfig


class FlowPayAdminConfig(AdminConfig):
    default_site = "backoffice.admin_site.FlowPayAdminSite"
