"""What django-axes asks of FlowPay (AXES_* in flowpay/settings/staff.py): the failure limit
and the lockout time, read from the settings at each call, and the response to a lockout
(the sign-in page, which already says so)."""

from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse


def failure_limit(request, credentials) -> int:
    return settings.FLOWPAY_STAFF_LOCKOUT_FAILURES


def cool_off(request=None) -> timedelta:
    return timedelta(minutes=settings.FLOWPAY_STAFF_LOCKOUT_MINUTES)


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """The sign-in page rendered the lockout (with its end time and what to do); keep it."""
    if original_response is not None:
        return original_response
    return HttpResponse("This account is locked after too many failed sign-ins.", status=403, content_type="text/plain")
