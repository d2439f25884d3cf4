"""Admin of the services app: services with their state and recent results, maintenance windows.

Saves go through services.actions (validation, scheduling, audit) rather than the base class's
plain save, so an admin edit and an API edit do exactly the same thing and audit once.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from accounts.choices import Role
from noc.admin import ActionsModelAdmin, AuditedModelAdmin
from noc.api.permissions import has_role
from services import actions, queries
from services.actions import service_create, service_delete, service_update
from services.api.serializers import maintenance_window_errors
from services.choices import CheckKind, ServiceStatus
from services.execution import check_now
from services.models import MaintenanceWindow, Service

STATUS_COLORS = {
    ServiceStatus.UP: "#1a7f37",
    ServiceStatus.DEGRADED: "#bf8700",
    ServiceStatus.DOWN: "#cf222e",
    ServiceStatus.MAINTENANCE: "#0969da",
    ServiceStatus.PAUSED: "#6e7781",
    ServiceStatus.UNKNOWN: "#6e7781",
}
MESSAGE_LEVELS = {"up": messages.SUCCESS, "degraded": messages.WARNING}
STATE_FIELDS = [
    "status", "last_checked_at", "last_response_time_ms", "last_status_code", "last_error",
    "consecutive_failures", "consecutive_successes", "next_check_at", "last_ping_at",
    "ping_url", "created_at", "updated_at", "recent_results",
]  # fmt: skip


def status_badge(status: str) -> str:
    color = STATUS_COLORS.get(status, "#6e7781")
    return format_html('<b style="color:{}">&#9679; {}</b>', color, status)


@admin.register(Service)
class ServiceAdmin(ActionsModelAdmin):
    list_display = [
        "id", "name", "colored_status", "kind", "enabled", "critical", "last_checked_at",
        "response_time", "tag_list",
    ]  # fmt: skip
    list_filter = ["kind", "status", "enabled", "critical"]
    search_fields = ["id", "name", "description", "url", "host", "dns_name"]
    readonly_fields = STATE_FIELDS
    # A URL typed without a scheme is checked over https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["enable_services", "disable_services", "check_services_now"]
    fieldsets = [
        (None, {"fields": ["id", "name", "description", "tags", "critical", "enabled"]}),
        ("Check", {"fields": [
            "kind", "url", "method", "headers", "body", "follow_redirects", "verify_tls",
            "host", "port", "dns_name", "dns_record_type", "dns_expected", "dns_server",
            "timeout_seconds", "retries", "allow_private",
        ]}),
        ("Schedule", {"fields": ["interval_seconds", "cron", "grace_seconds"]}),
        ("Assertions", {"fields": [
            "expected_status", "max_response_time_ms", "body_contains", "body_not_contains",
            "json_path", "json_expected", "cert_min_days",
        ]}),
        ("Alerting", {"fields": ["failure_threshold", "success_threshold", "incident_severity"]}),
        ("State", {"fields": STATE_FIELDS}),
    ]  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Service | None = None) -> list[str]:
        # The id is the slug other apps and URLs refer to: set once.
        return [*self.readonly_fields, "id"] if obj else list(self.readonly_fields)

    # --- list columns

    @admin.display(description="status", ordering="status")
    def colored_status(self, service: Service) -> str:
        return status_badge(service.status)

    @admin.display(description="response", ordering="last_response_time_ms")
    def response_time(self, service: Service) -> str:
        ms = service.last_response_time_ms
        return "-" if ms is None else f"{ms:.0f} ms"

    @admin.display(description="tags")
    def tag_list(self, service: Service) -> str:
        return ", ".join(service.tags)

    # --- change page

    @admin.display(description="ping URL")
    def ping_url(self, service: Service) -> str:
        if service.kind != CheckKind.PUSH or service._state.adding:
            return "-"
        return reverse("ping", kwargs={"token": service.ping_token})

    @admin.display(description="recent results")
    def recent_results(self, service: Service) -> str:
        if service._state.adding:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{r.time:%Y-%m-%d %H:%M:%S}",
                    status_badge(r.status),
                    "-" if r.response_time_ms is None else f"{r.response_time_ms:.0f} ms",
                    r.status_code or "-",
                    r.error or ("maintenance" if r.in_maintenance else ""),
                )
                for r in queries.recent_results(service.pk)
            ),
        )
        if not rows:
            return "No results yet."
        return format_html(
            "<table><thead><tr><th>time (UTC)</th><th>status</th><th>response</th>"
            "<th>code</th><th>error</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    # --- writes through the actions (they audit; the base class's audit is not used)

    create_action = staticmethod(service_create)
    update_action = staticmethod(service_update)
    delete_action = staticmethod(service_delete)
    instance_kwarg = "service"

    # --- bulk actions

    def has_check_now_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.OPERATOR)

    @admin.action(description="Enable selected services", permissions=["change"])
    def enable_services(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        self._set_enabled(request, queryset, enabled=True)

    @admin.action(description="Disable selected services", permissions=["change"])
    def disable_services(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        self._set_enabled(request, queryset, enabled=False)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet, *, enabled: bool) -> None:
        verb = "enabled" if enabled else "disabled"
        for service in queryset:
            if service.enabled == enabled:
                self.message_user(request, f"{service.id}: already {verb}.", messages.INFO)
                continue
            actions.service_set_enabled(actor=request.user, service=service, enabled=enabled)
            self.message_user(request, f"{service.id}: {verb}.", messages.SUCCESS)

    @admin.action(description="Check selected services now", permissions=["check_now"])
    def check_services_now(self, request: HttpRequest, queryset: QuerySet[Service]) -> None:
        for service in queryset:
            self.message_user(request, *self._check_one(request, service))

    def _check_one(self, request: HttpRequest, service: Service) -> tuple[str, int]:
        if service.kind == CheckKind.PUSH:
            return f"{service.id}: a push service is checked by its pings.", messages.WARNING
        actions.audit_check_now(actor=request.user, service=service)
        recorded = check_now(service)
        if recorded is None:
            return f"{service.id}: no result recorded, try again.", messages.WARNING
        result = recorded.result
        timing = "" if result.response_time_ms is None else f" in {result.response_time_ms:.0f} ms"
        error = f": {result.error}" if result.error else ""
        return (
            f"{service.id}: {result.status}{timing}{error}",
            MESSAGE_LEVELS.get(result.status, messages.ERROR),
        )


class MaintenanceWindowForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = ["name", "description", "services", "starts_at", "ends_at", "cron",
                  "duration_minutes"]  # fmt: skip

    def clean(self) -> dict:
        data = super().clean()
        errors = maintenance_window_errors(
            starts_at=data.get("starts_at"),
            ends_at=data.get("ends_at"),
            cron=data.get("cron") or "",
            duration_minutes=data.get("duration_minutes"),
        )
        for field, messages_ in errors.items():
            self.add_error(field, messages_)
        return data


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(AuditedModelAdmin):
    form = MaintenanceWindowForm
    list_display = ["name", "starts_at", "ends_at", "cron", "duration_minutes", "service_list"]
    search_fields = ["name", "description", "services__id", "services__name"]
    filter_horizontal = ["services"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[MaintenanceWindow]:
        return super().get_queryset(request).prefetch_related("services")

    @admin.display(description="services")
    def service_list(self, window: MaintenanceWindow) -> str:
        return ", ".join(s.id for s in window.services.all())

    def save_model(self, request, obj, form, change):
        # The services are set by the action; save_related sets the same set again (no audit).
        actions.maintenance_window_save(
            actor=request.user, window=obj, services=form.cleaned_data["services"]
        )
