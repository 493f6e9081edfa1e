"""Admin of staff users and their lockouts: roles and flags are edited here (each change
audited), a user's second factor is reset and a locked username unlocked only with a reason,
through the services (audited). Nobody sees or edits an authenticator's secret or a recovery
code: django-otp's device pages are not registered."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.template.response import TemplateResponse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.widgets import UnfoldAdminTextInputWidget

from accounts.models import StaffLockout
from accounts.services.lockout import staff_lockout_release
from accounts.services.mfa import staff_mfa_reset
from accounts.services.passwords import staff_password_changed
from accounts.services.staff_users import StaffPrivileges, staff_privileges_changed
from core.admin import ReadOnlyModelAdmin, staff_actor, staff_can
from core.errors import FlowPayError
from core.permissions import STAFF_ROLES, Capability


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=UnfoldAdminTextInputWidget(attrs={"autofocus": True}),
                             help_text="Recorded in the audit log.")

User = get_user_model()

for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
if admin.site.is_registered(User):
    admin.site.unregister(User)


class StaffSecurityActionsMixin:
    def has_staff_security_permission(self, request):
        return staff_can(request, Capability.STAFF_SECURITY)

    def _ask_reason(self, request, queryset, *, action: str, title: str, explanation: str, submit_label: str, labels, call):
        """Ask for a reason first (an intermediate page), then call the service once per
        selected row, each in its own transaction, reporting each outcome."""
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            actor = staff_actor(request)
            for obj in queryset:
                try:
                    call(obj, form.cleaned_data["reason"], actor)
                except FlowPayError as exc:
                    self.message_user(request, f"{labels(obj)}: {exc.message}", messages.ERROR)
                else:
                    self.message_user(request, f"{labels(obj)}: done.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": title, "explanation": explanation,
            "submit_label": submit_label, "items": [labels(obj) for obj in queryset], "form": form, "action": action,
            "selected": [obj.pk for obj in queryset],
        }
        return TemplateResponse(request, "admin/staff/reason.html", context)


@admin.register(User)
class StaffUserAdmin(StaffSecurityActionsMixin, DjangoUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ["username", "email", "is_active", "is_staff", "is_superuser", "roles", "second_factor", "last_login"]
    actions = ["reset_second_factor", "unlock"]

    @admin.display(description="roles")
    def roles(self, obj):
        return ", ".join(sorted(g.name for g in obj.groups.all() if g.name in STAFF_ROLES)) or "-"

    @admin.display(boolean=True, description="2nd factor")
    def second_factor(self, obj):
        return TOTPDevice.objects.filter(user_id=obj.pk, confirmed=True).exists()

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    # --- role changes, audited -------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        saved = User.objects.filter(pk=obj.pk).first() if change else None
        request._flowpay_privileges_before = StaffPrivileges.of(saved) if saved is not None else StaffPrivileges(
            roles=frozenset(), is_staff=False, is_superuser=False, is_active=False,
        )
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        staff_privileges_changed(user=form.instance, before=request._flowpay_privileges_before, actor=staff_actor(request))

    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                staff_password_changed(user=User.objects.get(pk=id), actor=staff_actor(request),
                                       by_self=str(request.user.pk) == str(id))
        return response

    # --- second factor and lockout -----------------------------------------------------------
    @admin.action(description="Reset second factor (asks for a reason)", permissions=["staff_security"])
    def reset_second_factor(self, request, queryset):
        return self._ask_reason(
            request, queryset, action="reset_second_factor", title="Reset the second factor",
            explanation="Removes the authenticator and recovery codes of these users; each must enrol again at the next sign-in.",
            submit_label="Reset", labels=lambda user: user.get_username(),
            call=lambda user, reason, actor: staff_mfa_reset(user_id=user.pk, reason=reason, actor=actor),
        )

    @admin.action(description="Unlock (asks for a reason)", permissions=["staff_security"])
    def unlock(self, request, queryset):
        lockouts = StaffLockout.objects.filter(username__in=queryset.values_list("username", flat=True), released_at__isnull=True)
        if not lockouts.exists():
            self.message_user(request, "None of these users is locked.", messages.INFO)
            return None
        return _unlock(self, request, lockouts, action="unlock")


def _unlock(model_admin, request, lockouts, *, action: str):
    return model_admin._ask_reason(
        request, lockouts, action=action, title="Unlock",
        explanation="Ends these lockouts now; the users can sign in again with their password and code.",
        submit_label="Unlock", labels=lambda lockout: lockout.username,
        call=lambda lockout, reason, actor: staff_lockout_release(lockout_id=lockout.pk, reason=reason, actor=actor),
    )


@admin.register(StaffLockout)
class StaffLockoutAdmin(StaffSecurityActionsMixin, ReadOnlyModelAdmin):
    list_display = ["username", "locked_at", "locked_until", "failures", "origin_ip", "released_at", "released_by", "release_reason"]
    list_filter = [("released_at", admin.EmptyFieldListFilter)]
    search_fields = ["username"]
    actions = ["unlock_selected"]

    @admin.action(description="Unlock selected (asks for a reason)", permissions=["staff_security"])
    def unlock_selected(self, request, queryset):
        return _unlock(self, request, queryset.filter(released_at__isnull=True), action="unlock_selected")
