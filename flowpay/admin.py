"""Admin building blocks shared by the apps (django-unfold)."""

from unfold.admin import ModelAdmin, TabularInline


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
