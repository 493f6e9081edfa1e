"""The staff sign-in pages, served by the admin site (backoffice.admin_site): thin views that
call the services of accounts and render unfold-styled templates (templates/admin/staff/)."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login

from accounts.models import StaffToken
from accounts.services import staff_token_issue, staff_token_revoke
from accounts.services.mfa import staff_mfa_enrolment_begin, staff_mfa_enrolment_confirm, user_has_second_factor
from accounts.services.signin import (
    SESSION_ENROL_UNTIL,
    SESSION_MFA_AT,
    staff_mfa_freshly_verified,
    staff_mfa_step_up,
    staff_sign_in,
)
from backoffice.staff.forms import CodeForm, SignInForm, StaffTokenIssueForm
from core.admin import staff_actor
from core.errors import FlowPayError

SESSION_ENROLMENT_DEVICE = "flowpay_enrol_device"
REFUSED = "Wrong username, password or code. Each failed attempt counts toward a lockout."


def _next_url(request, site) -> str:
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("admin:index", current_app=site.name)


def enrolment_pending(request) -> bool:
    """A password-only session that may still enrol an authenticator."""
    until = request.session.get(SESSION_ENROL_UNTIL)
    return bool(until) and timezone.now().timestamp() < until and request.user.is_authenticated


def sign_in(request, site):
    if request.method == "GET" and site.has_permission(request):
        return HttpResponseRedirect(_next_url(request, site))
    form = SignInForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        result = staff_sign_in(request=request, username=form.cleaned_data["username"],
                               password=form.cleaned_data["password"], code=form.cleaned_data["otp_token"])
        form.data = form.data.copy()
        form.data["otp_token"] = ""  # a code is never written back into the page
        if result.outcome == "signed_in":
            return HttpResponseRedirect(_next_url(request, site))
        if result.outcome == "enrolment_required":
            url = reverse("admin:staff_enrol", current_app=site.name)
            return HttpResponseRedirect(f"{url}?{REDIRECT_FIELD_NAME}={_next_url(request, site)}")
        if result.outcome == "locked":
            until = timezone.localtime(result.locked_until)
            form.add_error(None, f"This account is locked after too many failed sign-ins, until {until:%H:%M} UTC "
                                 "(right password and code included). An admin can unlock it sooner.")
            status = 403
        else:
            form.add_error(None, REFUSED)
    context = {
        **site.each_context(request), "title": "Sign in", "form": form, "app_path": request.get_full_path(),
        REDIRECT_FIELD_NAME: request.GET.get(REDIRECT_FIELD_NAME, ""),
        "lockout_failures": settings.FLOWPAY_STAFF_LOCKOUT_FAILURES, "lockout_minutes": settings.FLOWPAY_STAFF_LOCKOUT_MINUTES,
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/staff/login.html", context, status=status)


def enrol(request, site):
    """First sign-in of a user without an authenticator: show a new secret (once) and its QR
    code, confirm it with the first code, then show the ten recovery codes (once)."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("admin:login", current_app=site.name))
    if user_has_second_factor(request.user) or not enrolment_pending(request):
        if request.user.is_verified():
            return HttpResponseRedirect(reverse("admin:index", current_app=site.name))
        logout(request)
        messages.warning(request, "Sign in again to enrol your authenticator.")
        return HttpResponseRedirect(reverse("admin:login", current_app=site.name))
    context = {**site.each_context(request), "title": "Set up your authenticator", "next": _next_url(request, site)}
    if request.method == "POST":
        form = CodeForm(request.POST)
        if form.is_valid():
            try:
                enrolled = staff_mfa_enrolment_confirm(
                    user=request.user, device_id=request.session.get(SESSION_ENROLMENT_DEVICE) or 0,
                    code=form.cleaned_data["code"], actor=staff_actor(request),
                )
            except FlowPayError as exc:
                form.add_error("code", exc.message)
            else:
                request.session.cycle_key()
                otp_login(request, enrolled.device)
                request.session[SESSION_MFA_AT] = int(timezone.now().timestamp())
                request.session.pop(SESSION_ENROL_UNTIL, None)
                request.session.pop(SESSION_ENROLMENT_DEVICE, None)
                context.update(title="Your recovery codes", recovery_codes=enrolled.recovery_codes)
                return TemplateResponse(request, "admin/staff/recovery_codes.html", context)
        # A wrong code: the secret is not shown again; the same authenticator may try again,
        # or the user starts over with a new secret (GET).
        context.update(form=form, enrolment=None)
        request.current_app = site.name
        return TemplateResponse(request, "admin/staff/enrol.html", context, status=400)
    enrolment = staff_mfa_enrolment_begin(user=request.user)
    request.session[SESSION_ENROLMENT_DEVICE] = enrolment.device_id
    context.update(form=CodeForm(), enrolment=enrolment)
    request.current_app = site.name
    return TemplateResponse(request, "admin/staff/enrol.html", context)


def staff_tokens(request, site):
    """The signed-in user's own staff tokens: issue one (after a fresh second factor), revoke."""
    default_hours = settings.FLOWPAY_STAFF_TOKEN_DEFAULT_HOURS
    form = StaffTokenIssueForm(initial={"expires_in_hours": default_hours})
    issued = None
    if request.method == "POST" and "revoke" in request.POST:
        token = StaffToken.objects.filter(pk=request.POST.get("revoke") or 0, user=request.user).first()
        if token is not None:
            staff_token_revoke(staff_token_id=token.pk, actor=staff_actor(request))
            messages.success(request, f"{token.prefix}…: revoked.")
        return HttpResponseRedirect(reverse("admin:staff_tokens", current_app=site.name))
    if request.method == "POST":
        form = StaffTokenIssueForm(request.POST)
        if form.is_valid():
            fresh = staff_mfa_freshly_verified(request=request)
            if not fresh and not form.cleaned_data["code"]:
                form.add_error("code", "Enter the current code of your authenticator to issue a token.")
            elif not fresh and not staff_mfa_step_up(request=request, code=form.cleaned_data["code"]):
                form.add_error("code", "That code was not accepted (a code works once; wait for the next one).")
            else:
                try:
                    issued = staff_token_issue(
                        user=request.user, label=form.cleaned_data["label"],
                        expires_in=timedelta(hours=form.cleaned_data["expires_in_hours"]), actor=staff_actor(request),
                    )
                except FlowPayError as exc:
                    form.add_error("expires_in_hours", exc.message)
                else:
                    form = StaffTokenIssueForm(initial={"expires_in_hours": default_hours})
    context = {
        **site.each_context(request), "title": "Staff tokens", "form": form, "issued": issued, "now": timezone.now(),
        "tokens": StaffToken.objects.filter(user=request.user).order_by("-created_at")[:100],
        "needs_code": not staff_mfa_freshly_verified(request=request),
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/staff/tokens.html", context)

