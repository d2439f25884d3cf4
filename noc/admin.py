"""Admin base class: every save and delete leaves an AuditEvent in the same transaction."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction

from accounts.actions import audit_create, audit_delete, audit_update
from accounts.audit import snapshot

admin.site.site_header = "NOC administration"
admin.site.site_title = "NOC"


class AuditedModelAdmin(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        # changeform_view already runs inside transaction.atomic().
        before = snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        if change:
            audit_update(actor=request.user, instance=obj, before=before)
        else:
            audit_create(actor=request.user, instance=obj)

    def delete_model(self, request, obj):
        audit_delete(actor=request.user, instance=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                audit_delete(actor=request.user, instance=obj)
            super().delete_queryset(request, queryset)


class ActionsModelAdmin(admin.ModelAdmin):
    """Saves and deletes through an app's actions, which validate and write the audit row
    themselves. Subclasses name them: `create_action(actor=, **fields)`,
    `update_action(actor=, <instance_kwarg>=obj, **fields)`, `delete_action(actor=, <...>=obj)`."""

    create_action = None
    update_action = None
    delete_action = None
    instance_kwarg = "instance"

    def save_model(self, request, obj, form, change):
        if change:
            fields = {name: form.cleaned_data[name] for name in form.changed_data}
            self.update_action(actor=request.user, **{self.instance_kwarg: obj}, **fields)
            return
        created = self.create_action(actor=request.user, **form.cleaned_data)
        for field in type(obj)._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False

    def delete_model(self, request, obj) -> None:
        self.delete_action(actor=request.user, **{self.instance_kwarg: obj})

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)


# The pages of Django, django-celery-beat and django-axes, admin-only and audited (after the
# packages registered theirs: INSTALLED_APPS lists them before noc).
import noc.admin_packages  # noqa: E402, F401
