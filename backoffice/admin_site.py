"""FlowPay's admin site: unfold's look (UnfoldAdminSite) and django-otp's rule (OTPAdminSite:
only a session verified by a second factor has permission), with FlowPay's own sign-in
(username, password and code in one form, under the django-axes lockout), enrolment and
personal staff tokens pages. Installed as `admin.site` by backoffice.admin_config.

The pages' module (backoffice.staff.views) is imported when a page is served: it imports
admin modules that register on this very site, which must exist first."""

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.db import transaction
from django.urls import path
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp.admin import OTPAdminSite
from unfold.sites import UnfoldAdminSite

from accounts.services.passwords import staff_password_changed
from accounts.services.signin import staff_sign_out
from core.actors import Actor
from core.network import client_ip


class FlowPayAdminSite(OTPAdminSite, UnfoldAdminSite):
    login_template = "admin/staff/login.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def extra_urls(self):
        return [
            path("staff/enrol/", self._open(self._page("enrol")), name="staff_enrol"),
            path("staff/tokens/", self.admin_view(self._page("staff_tokens")), name="staff_tokens"),
            path("dashboard/overview/", self.admin_view(self._dashboard_page("overview_views", "overview_page")),
                 name="dashboard_overview"),
            path("dashboard/gateways/", self.admin_view(self._dashboard_page("gateways_views", "gateways_page")),
                 name="dashboard_gateways"),
            *self._dashboard_pages(),
        ]

    def _dashboard_page(self, module: str, name: str):
        """A dashboard page, imported when served (it reads models registered on this site)."""
        def page(request, *args, **kwargs):
            from importlib import import_module

            return getattr(import_module(f"backoffice.dashboard.{module}"), name)(request, self, *args, **kwargs)

        return page

    def _dashboard_pages(self):
        from backoffice.dashboard.urls import dashboard_urls

        return dashboard_urls(self)

    def _page(self, name: str):
        def page(request, *args, **kwargs):
            from backoffice.staff import views

            return getattr(views, name)(request, self, *args, **kwargs)

        return page

    def _open(self, view):
        """A page for a signed-in session that has not passed its second factor yet."""
        return never_cache(csrf_protect(view))

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def login(self, request, extra_context=None):
        return self._page("sign_in")(request)

    def logout(self, request, extra_context=None):
        if request.method == "POST":
            staff_sign_out(request=request)
        return super().logout(request, extra_context)

    def password_change(self, request, extra_context=None):
        """Django's password change page (AUTH_PASSWORD_VALIDATORS apply), audited."""
        with transaction.atomic():
            response = super().password_change(request, extra_context)
            if request.method == "POST" and response.status_code == 302:
                staff_password_changed(user=request.user, actor=Actor.staff(user=request.user, ip=client_ip(request)), by_self=True)
        return response

    def each_context(self, request):
        context = super().each_context(request)
        context["redirect_field_name"] = REDIRECT_FIELD_NAME
        return context
