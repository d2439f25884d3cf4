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
