"""Admin of the console: the status page's settings (one row) and its groups of services.
Admins edit them; every role may read them. Writes go through web.actions (audited)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from accounts.choices import Role
from noc.api.permissions import has_role
from web import actions
from web.models import StatusGroup, StatusPage


class AdminWritesOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_role(request.user, Role.ADMIN)


@admin.register(StatusPage)
class StatusPageAdmin(AdminWritesOnly):
    """One page: the list goes straight to its form (the defaults until first saved)."""

    fieldsets = [
        (None, {"fields": ["enabled", "title", "introduction", "logo_url", "accent_color"]}),
        ("What is shown", {
            "fields": ["services_shown", "show_response_times", "announce_maintenance_days"]
        }),
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the one row is created by its first save

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        return HttpResponseRedirect(reverse("admin:web_statuspage_change", args=[1]))

    def get_object(self, request: HttpRequest, object_id: str, from_field=None):
        return StatusPage.current() if str(object_id) == "1" else None

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.cleaned_data}
        saved = actions.status_page_update(actor=request.user, **fields)
        obj.pk = saved.pk


@admin.register(StatusGroup)
class StatusGroupAdmin(AdminWritesOnly):
    list_display = ["name", "position", "service_list"]
    ordering = ["position", "name"]
    filter_horizontal = ["services"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("services")

    @admin.display(description="services")
    def service_list(self, group: StatusGroup) -> str:
        return ", ".join(s.name for s in group.services.all())

    def save_model(self, request, obj, form, change):
        # The services are set by the action; save_related sets the same set again (no audit).
        actions.status_group_save(
            actor=request.user, group=obj, services=form.cleaned_data["services"]
        )

    def delete_model(self, request, obj) -> None:
        actions.status_group_delete(actor=request.user, group=obj)

    def delete_queryset(self, request, queryset) -> None:
        for group in queryset:
            actions.status_group_delete(actor=request.user, group=group)
