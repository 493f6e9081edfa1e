"""Back-office admin of fraud screening (django-unfold).

Rules, decisions and reviews are read-only here: rules change through the API (each change
a version), decisions are written once by screening, reviews are decided through the API.
Lists are managed here too: staff holding fraud.lists add a value to a merchant's list (the
service validates and audits it, as for the API) and remove values with an action. Every
staff role may read the pages (fraud.read)."""

from django import forms
from django.contrib import admin, messages

from core.admin import ReadOnlyModelAdmin, ReadOnlyTabularInline, run_per_row, staff_actor, staff_can
from core.errors import FlowPayError
from core.permissions import Capability
from fraud.models import Decision, ListItem, Review, Rule, RuleVersion
from fraud.screening.language.attributes import LISTS
from fraud.screening.lists import list_item_add, list_item_remove, list_value_normalise


class FraudReadMixin:
    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or staff_can(request, Capability.FRAUD_READ)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or staff_can(request, Capability.FRAUD_READ)


class RuleVersionInline(ReadOnlyTabularInline):
    model = RuleVersion
    fields = ["number", "action", "mode", "source", "description", "created_by", "created_at"]
    show_change_link = False


@admin.register(Rule)
class RuleAdmin(FraudReadMixin, ReadOnlyModelAdmin):
    list_display = ["public_id", "merchant", "livemode", "rule_text", "mode", "version", "updated_at"]
    list_filter = ["livemode", "current_version__mode", "current_version__action"]
    search_fields = ["public_id", "merchant__public_id", "current_version__source"]
    list_select_related = ["merchant", "current_version"]
    inlines = [RuleVersionInline]

    @admin.display(description="rule")
    def rule_text(self, obj: Rule) -> str:
        return obj.current_version.source if obj.current_version_id else ""

    @admin.display(description="mode")
    def mode(self, obj: Rule) -> str:
        return obj.current_version.mode if obj.current_version_id else ""

    @admin.display(description="version")
    def version(self, obj: Rule) -> int | None:
        return obj.current_version.number if obj.current_version_id else None


class ListItemAddForm(forms.ModelForm):
    list = forms.ChoiceField(choices=[(name, name) for name in sorted(LISTS)])

    class Meta:
        model = ListItem
        fields = ["merchant", "livemode", "list", "value", "reason", "expires_at"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("list") and cleaned.get("value"):
            try:
                cleaned["value"] = list_value_normalise(list_name=cleaned["list"], value=cleaned["value"])
            except FlowPayError as exc:
                self.add_error("value", exc.message)
        return cleaned

    def validate_unique(self):
        """The service decides (the partial unique index under concurrency)."""


@admin.register(ListItem)
class ListItemAdmin(FraudReadMixin, ReadOnlyModelAdmin):
    list_display = ["public_id", "merchant", "livemode", "list", "value", "reason", "expires_at", "removed_at", "created_by"]
    list_filter = ["list", "livemode", ("removed_at", admin.EmptyFieldListFilter)]
    search_fields = ["public_id", "value", "merchant__public_id"]
    list_select_related = ["merchant"]
    actions = ["remove_items"]

    def has_add_permission(self, request, obj=None):
        return staff_can(request, Capability.FRAUD_LISTS)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ListItemAddForm
            kwargs["fields"] = ListItemAddForm.Meta.fields
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ListItemAddForm.Meta.fields if obj is None else super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else super().get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        """Through the service (validated, audited, the same rules as the API)."""
        data = form.cleaned_data
        try:
            item = list_item_add(merchant=data["merchant"], livemode=data["livemode"], list_name=data["list"],
                                 value=data["value"], reason=data.get("reason") or "", expires_at=data.get("expires_at"),
                                 actor=staff_actor(request))
        except FlowPayError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk, obj.public_id, obj.created_at = item.pk, item.public_id, item.created_at

    def has_remove_permission(self, request) -> bool:
        return staff_can(request, Capability.FRAUD_LISTS)

    @admin.action(description="Remove from the list", permissions=["remove"])
    def remove_items(self, request, queryset):
        rows = queryset.filter(removed_at__isnull=True).values_list("pk", "public_id")
        actor = staff_actor(request)
        run_per_row(self, request, rows, lambda pk: list_item_remove(item_id=pk, actor=actor), "removed")


@admin.register(Decision)
class DecisionAdmin(FraudReadMixin, ReadOnlyModelAdmin):
    list_display = ["public_id", "transaction", "merchant", "outcome", "score", "level", "simplified", "degraded", "created_at"]
    list_filter = ["outcome", "level", "simplified", "degraded", "livemode"]
    search_fields = ["public_id", "transaction__public_id", "merchant__public_id"]
    list_select_related = ["transaction", "merchant"]
    show_full_result_count = False


@admin.register(Review)
class ReviewAdmin(FraudReadMixin, ReadOnlyModelAdmin):
    list_display = ["public_id", "transaction", "merchant", "status", "result", "closed_by", "created_at", "closed_at"]
    list_filter = ["status", "result", "livemode"]
    search_fields = ["public_id", "transaction__public_id", "merchant__public_id"]
    list_select_related = ["transaction", "merchant"]
