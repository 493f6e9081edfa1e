"""Admin for merchants and their credentials: names and the active flag are edited here,
keys are only revoked (through the services, audited)."""

from django.contrib import admin
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter

from accounts.models import ApiKey, Merchant, StaffToken
from accounts.services import api_key_revoke, staff_token_revoke
from core.actors import Actor
from core.admin import ReadOnlyModelAdmin, ReadOnlyTabularInline
from core.admin import run_per_row as _run_per_row
from core.admin import staff_actor as _staff_actor


# --- merchants and credentials ---------------------------------------------------------
class ApiKeyInline(ReadOnlyTabularInline):
    model = ApiKey
    fields = ["prefix", "environment", "label", "created_at", "last_used_at", "revoked_at"]


@admin.register(Merchant)
class MerchantAdmin(ModelAdmin):
    """Only the name and the active flag are edited here (django-auditlog keeps the field
    history). Merchants and their keys are created by `create_merchant` / the services,
    which show the key's secret once; nothing is deleted (payments and audit refer to it)."""

    list_display = ["name", "public_id", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "public_id"]
    fields = ["public_id", "name", "is_active", "created_at", "updated_at"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    inlines = [ApiKeyInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CredentialAdmin(ReadOnlyModelAdmin):
    # The digest cannot reveal the secret, but no one needs to see it either.
    hidden_fields = ("key_hash",)
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("created_at", RangeDateTimeFilter)]
    list_filter_submit = True
    actions = ["revoke_selected"]

    def has_revoke_permission(self, request):
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.display(boolean=True, description="active")
    def active(self, obj):
        return obj.is_active

    def revoke(self, *, pk: int, actor: Actor) -> None:
        raise NotImplementedError

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        actor = _staff_actor(request)
        rows = queryset.filter(revoked_at__isnull=True).values_list("pk", "prefix")
        _run_per_row(self, request, rows, lambda pk: self.revoke(pk=pk, actor=actor), "revoked")


@admin.register(ApiKey)
class ApiKeyAdmin(CredentialAdmin):
    list_display = ["prefix", "merchant", "environment", "label", "active", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["environment", *CredentialAdmin.list_filter]
    search_fields = ["prefix", "label", "merchant__name", "merchant__public_id"]
    list_select_related = ["merchant"]

    def revoke(self, *, pk: int, actor: Actor) -> None:
        api_key_revoke(api_key_id=pk, actor=actor)


@admin.register(StaffToken)
class StaffTokenAdmin(CredentialAdmin):
    list_display = ["prefix", "user", "label", "active", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "label", "user__username"]
    list_select_related = ["user"]

    def revoke(self, *, pk: int, actor: Actor) -> None:
        staff_token_revoke(staff_token_id=pk, actor=actor)


from accounts import admin_staff  # noqa: E402, F401  (staff users and lockouts: registered below the shared bases)
