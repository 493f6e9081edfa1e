"""List filters of the dashboard's lists, on django-unfold's filter classes.

Each one reads Django admin's standard lookup names (`currency__exact`, `gateway__exact`),
so a link built elsewhere (the overview's figures) lands on the same filtered list as a
person choosing the filter by hand."""

from django.contrib import admin
from unfold.contrib.filters.admin import DropdownFilter, FieldTextFilter

from gateways.registry import GATEWAY_CLASSES


class ExactTextFilter(FieldTextFilter):
    """A text box matching the field exactly (`<field>__exact`), e.g. a currency code."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.lookup_kwarg = f"{field_path}__exact"
        self.lookup_val = params.get(self.lookup_kwarg)
        # FieldTextFilter's own __init__ would set its `__icontains` name back.
        admin.FieldListFilter.__init__(self, field, request, params, model, model_admin, field_path)

    def expected_parameters(self) -> list[str]:
        return [self.lookup_kwarg]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(**{self.lookup_kwarg: value.strip().upper() if self.field.name == "currency" else value.strip()})


def gateway_filter(field_path: str = "gateway") -> type[admin.SimpleListFilter]:
    """A dropdown of the gateways FlowPay knows (from the registry: no scan of the table)."""

    class GatewayDropdownFilter(DropdownFilter):
        title = "gateway"
        parameter_name = f"{field_path}__exact"

        def lookups(self, request, model_admin):
            return [(name, name) for name in sorted(GATEWAY_CLASSES)]

        def queryset(self, request, queryset):
            return queryset.filter(**{field_path: self.value()}) if self.value() else queryset

    return GatewayDropdownFilter
