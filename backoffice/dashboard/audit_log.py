"""The audit log browser: the audit entries' list (audit.admin's page, extended here) with
filters by merchant, actor type and id, action, object, result, correlation id and time,
each entry's (already redacted) details on its page, the chain's state above the list (the
last seal, the entries not sealed yet, the last `verify_audit_log` and what it found), a
"verify now" button for auditors, and the CSV export of the filtered entries.

Served at the admin's `dashboard_audit_log` URL as well as at the model's own list."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    DropdownFilter,
    RangeDateTimeFilter,
    RelatedDropdownFilter,
)

from audit.actions import AuditAction
from audit.admin import AuditEntryAdmin
from audit.models import AuditEntry, AuditSeal
from audit.verification import audit_verify_recorded
from backoffice.dashboard.exports.columns import ExportColumn
from backoffice.dashboard.exports.views import export_list
from backoffice.dashboard.filters import ExactTextFilter
from core.actors import ActorType
from core.admin import staff_actor, staff_can
from core.permissions import Capability


class ActorTypeFilter(DropdownFilter):
    title = "actor type"
    parameter_name = "actor_type__exact"

    def lookups(self, request, model_admin):
        return [(member.value, member.value) for member in ActorType]

    def queryset(self, request, queryset):
        return queryset.filter(actor_type=self.value()) if self.value() else queryset


class ActionFilter(DropdownFilter):
    title = "action"
    parameter_name = "action__exact"

    def lookups(self, request, model_admin):
        return [(member.value, member.value) for member in sorted(AuditAction, key=str)]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@dataclass(frozen=True)
class ChainState:
    last_seal: AuditSeal | None
    unsealed_entries: int
    last_verification: AuditEntry | None


def audit_chain_state() -> ChainState:
    """Three indexed reads: the newest seal, the entries after it, the last verification."""
    last_seal = AuditSeal.objects.order_by("-last_entry_id").first()
    after = last_seal.last_entry_id if last_seal else 0
    return ChainState(
        last_seal=last_seal,
        unsealed_entries=AuditEntry.objects.filter(pk__gt=after).count(),
        last_verification=AuditEntry.objects.filter(action=AuditAction.AUDIT_LOG_VERIFY.value).order_by("-id").first(),
    )


class AuditLogBrowser(AuditEntryAdmin):
    list_filter = [
        ("merchant", RelatedDropdownFilter), ActorTypeFilter, ("actor_id", ExactTextFilter), ActionFilter,
        ("object_type", ExactTextFilter), ("object_id", ExactTextFilter), ("result", ChoicesDropdownFilter),
        ("correlation_id", ExactTextFilter), ("occurred_at", RangeDateTimeFilter),
    ]
    list_filter_submit = True
    list_before_template = "admin/dashboard/audit_chain.html"
    export_columns = [
        ExportColumn("id", "id"), ExportColumn("occurred_at", "occurred_at"), ExportColumn("actor_type", "actor_type"),
        ExportColumn("actor_id", "actor_id"), ExportColumn("merchant", "merchant__public_id"),
        ExportColumn("action", "action"), ExportColumn("object_type", "object_type"),
        ExportColumn("object_id", "object_id"), ExportColumn("result", "result"),
        ExportColumn("correlation_id", "correlation_id"), ExportColumn("origin_ip", "origin_ip"),
        ExportColumn("details", "details"),
    ]

    # Finance, auditors and admins read the log (audit.read), whatever their model permissions.
    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or staff_can(request, Capability.AUDIT_READ)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or staff_can(request, Capability.AUDIT_READ)

    def get_custom_urls(self):
        opts = self.model._meta
        return (
            ("export-csv/", f"{opts.app_label}_{opts.model_name}_export_csv", export_list),
            ("verify/", "dashboard_audit_log_verify", audit_log_verify),
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "chain": audit_chain_state(),
            "may_verify": staff_can(request, Capability.AUDIT_VERIFY),
        }
        return super().changelist_view(request, extra_context)


def audit_log_verify(request, model_admin):
    """POST: verify the whole log now, as the staff user; the result is itself audited."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not staff_can(request, Capability.AUDIT_VERIFY):
        raise PermissionDenied
    # No one-time token: a second verification changes nothing but adds its own record.
    back = reverse("admin:dashboard_audit_log")
    report = audit_verify_recorded(actor=staff_actor(request))
    if report.ok:
        messages.success(request, f"The audit log verifies: {report.seals_checked} seals, "
                                  f"{report.entries_verified + report.entries_unsealed} entries checked.")
    else:
        messages.error(request, f"The audit log does NOT verify: {len(report.problems)} problems, first: "
                                f"{report.problems[0]['where']}: {report.problems[0]['problem']}")
    return HttpResponseRedirect(back)


def audit_log_page(request, admin_site):
    """The browser at its dashboard URL: the audit entries' list itself."""
    return admin_site._registry[AuditEntry].changelist_view(request)


if admin.site.is_registered(AuditEntry):
    admin.site.unregister(AuditEntry)
admin.site.register(AuditEntry, AuditLogBrowser)
