"""Admin building blocks shared by the apps (django-unfold)."""

from collections.abc import Callable, Iterable

from django.contrib import messages
from unfold.admin import ModelAdmin, TabularInline

from core.actors import Actor
from core.errors import FlowPayError
from core.network import client_ip
from core.permissions import Capability, roles_can, user_roles


class NoWritesMixin:
    """No add, change or delete from the admin: the rows are written only by services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyModelAdmin(NoWritesMixin, ModelAdmin):
    """Shows every concrete field and changes none: the rows it lists are written only by
    services (which lock, audit and talk to gateways), never by hand in the admin."""

    # Fields never worth showing (e.g. secret digests); subclasses name them.
    hidden_fields: tuple[str, ...] = ()

    def get_fields(self, request, obj=None):
        if self.fields:
            return self.fields
        # Listed explicitly: non-editable fields (public ids, timestamps) would otherwise be
        # left out of a view-only page.
        return [f.name for f in self.model._meta.concrete_fields if f.name not in self.hidden_fields]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)


class ReadOnlyTabularInline(NoWritesMixin, TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request, obj=None):
        return self.fields


def staff_actor(request) -> Actor:
    return Actor.staff(user=request.user, ip=client_ip(request))


def staff_can(request, capability: Capability) -> bool:
    """Whether the logged-in staff user's roles hold `capability` (core.permissions): staff
    roles open admin pages and actions without per-model Django permissions. The roles are
    read once per request (a page asks for dozens of capabilities: sidebar, cards, actions)."""
    user = request.user
    cached = getattr(request, "_flowpay_staff_roles", None)
    if cached is None or cached[0] != user.pk:
        cached = (user.pk, user_roles(user))
        request._flowpay_staff_roles = cached
    return roles_can(cached[1], capability)


def run_per_row(model_admin, request, rows: Iterable[tuple[int, str]], call: Callable[[int], object], done: str) -> None:
    """Call a service once per selected row, each in its own database transaction, so one
    failure (wrong state, gateway down) neither hides nor undoes the others."""
    for pk, label in rows:
        try:
            call(pk)
        except FlowPayError as exc:
            model_admin.message_user(request, f"{label}: {exc.message}", messages.ERROR)
        else:
            model_admin.message_user(request, f"{label}: {done}.", messages.SUCCESS)


from django.contrib import admin as django_admin  # noqa: E402  (registration below the shared bases)

from core.models import IdempotencyRecord, RuntimeSetting  # noqa: E402


@django_admin.register(RuntimeSetting)
class RuntimeSettingAdmin(ReadOnlyModelAdmin):
    """The operator switches in force; they change only through the audited operator endpoints."""

    actions = None
    list_display = ["key", "value", "updated_by", "updated_at"]


@django_admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyModelAdmin):
    list_display = ["key", "scope", "method", "path", "status", "response_status", "created_at"]
    list_filter = ["status", "method"]
    search_fields = ["key", "scope", "path"]
    show_full_result_count = False
