"""Every page under FLOWPAY_STAFF_MFA_PATHS (the admin, the dashboard) needs a session that
passed its second factor (PCI DSS 8.4.2, 8.5.1: no bypass).

Rule, for a signed-in session that has not passed it: a password-only session of a user
without an authenticator, started by the sign-in page within FLOWPAY_STAFF_ENROLMENT_SECONDS,
is sent to enrolment; any other (its device reset by an admin, or signed in some other way)
is signed out and sent to the sign-in page. Nothing else under those paths is served to it,
whether the URL exists or not. Requests outside the paths (the API, health, metrics) pass
through after one string comparison."""

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from accounts.services.mfa import user_has_second_factor
from backoffice.staff.views import enrolment_pending

# The pages such a session may open (names in the admin site's namespace).
OPEN_PAGES = ("admin:login", "admin:logout", "admin:staff_enrol")


class StaffMfaRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(tuple(settings.FLOWPAY_STAFF_MFA_PATHS)):
            return self.get_response(request)
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return self.get_response(request)
        if request.path_info in {reverse(name) for name in OPEN_PAGES}:
            return self.get_response(request)
        query = urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})
        if enrolment_pending(request) and not user_has_second_factor(user):
            return HttpResponseRedirect(f"{reverse('admin:staff_enrol')}?{query}")
        logout(request)
        return HttpResponseRedirect(f"{reverse('admin:login')}?{query}")
