"""Admin of the observability app: applications (with their ingest keys) and ingest keys.

Writes go through observability.actions, which validate and audit. A new key is shown once,
in the message that follows its creation.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest

from noc.admin import ActionsModelAdmin
from observability.actions import (
    application_create,
    application_delete,
    application_update,
    ingest_key_create,
    ingest_key_revoke,
)
from observability.models import Application, IngestKey

KEY_FIELDS = ["name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]


def show_key_once(request: HttpRequest, application: Application, key: str) -> None:
    messages.warning(
        request,
        f"Ingest key for {application.slug}: {key} — copy it now, it is not shown again.",
    )


class IngestKeyInline(admin.TabularInline):
    model = IngestKey
    fields = KEY_FIELDS
    readonly_fields = KEY_FIELDS
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Application)
class ApplicationAdmin(ActionsModelAdmin):
    list_display = ["slug", "name", "environment", "owner", "created_at"]
    list_filter = ["environment"]
    search_fields = ["slug", "name", "owner", "description"]
    inlines = [IngestKeyInline]
    actions = ["new_ingest_key"]

    update_action = staticmethod(application_update)
    delete_action = staticmethod(application_delete)
    instance_kwarg = "application"

    def get_readonly_fields(self, request: HttpRequest, obj: Application | None = None):
        # The slug is the id in URLs and in every client's configuration: set once.
        return ["slug", "created_at", "updated_at"] if obj else ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created, _ingest_key, key = application_create(actor=request.user, **form.cleaned_data)
        obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at
        obj._state.adding = False
        show_key_once(request, created, key)

    @admin.action(description="Create an ingest key for the selected applications")
    def new_ingest_key(self, request, queryset) -> None:
        with transaction.atomic():
            for application in queryset:
                _ingest_key, key = ingest_key_create(
                    actor=request.user, application=application, name="admin"
                )
                show_key_once(request, application, key)


@admin.register(IngestKey)
class IngestKeyAdmin(admin.ModelAdmin):
    list_display = ["application", *KEY_FIELDS]
    list_filter = ["revoked_at", "application"]
    list_select_related = ["application", "created_by"]
    search_fields = ["name", "prefix", "application__slug"]
    readonly_fields = ["application", *KEY_FIELDS]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        # A key is shown once: create it from its application's page or the API.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the row stays, for the record

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        with transaction.atomic():
            for ingest_key in queryset:
                ingest_key_revoke(actor=request.user, ingest_key=ingest_key)
