"""Admin of the incidents app: incidents with their badges, read-only timeline and lifecycle
actions.

Every write goes through incidents.actions (timeline event and audit in one transaction), so an
admin edit and an API edit do exactly the same thing; the base class's plain save and its audit
are not used, and incidents are closed, never deleted.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.choices import Role
from incidents import actions
from incidents.choices import ACTIVE_STATUSES, IncidentStatus, Severity
from incidents.models import Incident, IncidentEvent
from noc.admin import AuditedModelAdmin
from noc.api.permissions import has_role

SEVERITY_COLORS = {
    Severity.CRITICAL: "#cf222e",
    Severity.HIGH: "#bc4c00",
    Severity.MEDIUM: "#bf8700",
    Severity.LOW: "#6e7781",
}
STATUS_COLORS = {
    IncidentStatus.NEW: "#cf222e",
    IncidentStatus.INVESTIGATING: "#bf8700",
    IncidentStatus.IN_PROGRESS: "#0969da",
    IncidentStatus.RESOLVED: "#1a7f37",
    IncidentStatus.CLOSED: "#6e7781",
}
EDITABLE = ["title", "public_title", "summary", "severity", "root_cause", "resolution_notes"]
STATE_FIELDS = [
    "status", "source", "assignee", "dedup_key", "impact_started_at", "detected_at",
    "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "closed_at", "closed_by",
    "failed_checks", "reopen_count", "last_notified_at", "updated_at",
]  # fmt: skip


def badge(label: str, color: str) -> str:
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 7px;border-radius:9px;'
        'font-weight:bold;white-space:nowrap">{}</span>',
        color,
        label,
    )


class IncidentEventInline(admin.TabularInline):
    """The timeline, as written by the actions: shown, never edited."""

    model = IncidentEvent
    verbose_name_plural = "timeline"
    fields = ["time", "kind", "actor", "message", "data"]
    readonly_fields = fields
    ordering = ["time", "id"]
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[IncidentEvent]:
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class IncidentAddForm(forms.ModelForm):
    """Opening by hand: refused up front when the service already has an active incident."""

    class Meta:
        model = Incident
        fields = ["service", "title", "severity", "summary"]

    def clean(self) -> dict:
        data = super().clean()
        service = data.get("service")
        active = Incident.objects.filter(service=service, status__in=ACTIVE_STATUSES).first()
        if service is not None and active is not None:
            self.add_error("service", f"{service} already has active incident #{active.pk}.")
        return data


@admin.register(Incident)
class IncidentAdmin(AuditedModelAdmin):
    list_display = [
        "id", "title", "service", "severity_badge", "status_badge", "source", "assignee",
        "detected_at", "acknowledged_at", "resolved_at",
    ]  # fmt: skip
    list_display_links = ["id", "title"]
    list_filter = ["status", "severity", "source", "service"]
    list_select_related = ["service", "assignee"]
    search_fields = ["title", "summary", "service__id", "service__name"]
    date_hierarchy = "detected_at"
    inlines = [IncidentEventInline]
    actions = ["acknowledge_incidents", "resolve_incidents", "close_incidents"]

    def get_form(self, request: HttpRequest, obj: Incident | None = None, **kwargs):
        if obj is None:
            kwargs["form"] = IncidentAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Incident | None = None) -> list[str]:
        if obj is None:
            return list(IncidentAddForm.Meta.fields)
        return ["service", *EDITABLE, *STATE_FIELDS]

    def get_readonly_fields(self, request: HttpRequest, obj: Incident | None = None) -> list[str]:
        return [] if obj is None else ["service", *STATE_FIELDS]

    def get_inlines(self, request: HttpRequest, obj: Incident | None):
        return self.inlines if obj is not None else []

    def has_delete_permission(self, request: HttpRequest, obj: Incident | None = None) -> bool:
        return False  # the record of what happened stays; incidents are closed instead

    # --- list columns

    @admin.display(description="severity", ordering="severity")
    def severity_badge(self, incident: Incident) -> str:
        return badge(incident.get_severity_display(), SEVERITY_COLORS[incident.severity])

    @admin.display(description="status", ordering="status")
    def status_badge(self, incident: Incident) -> str:
        return badge(incident.get_status_display(), STATUS_COLORS[incident.status])

    # --- writes through the actions: they write the timeline and audit once

    def save_model(self, request: HttpRequest, obj: Incident, form: forms.ModelForm, change: bool):
        if not change:
            created = actions.incident_create_manual(actor=request.user, **form.cleaned_data)
            obj.pk, obj._state.adding = created.pk, False
            return
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE}
        if fields:
            actions.incident_update(incident=obj, actor=request.user, **fields)

    # --- bulk actions (operators and admins)

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.OPERATOR)

    @admin.action(description="Acknowledge selected incidents", permissions=["operate"])
    def acknowledge_incidents(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        self._each(request, queryset, "acknowledged", actions.incident_acknowledge)

    @admin.action(description="Resolve selected incidents", permissions=["operate"])
    def resolve_incidents(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        self._each(request, queryset, "resolved", actions.incident_resolve)

    @admin.action(description="Close selected incidents", permissions=["operate"])
    def close_incidents(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        self._each(request, queryset, "closed", actions.incident_close)

    def _each(
        self, request: HttpRequest, queryset: QuerySet[Incident], done: str, act: Callable
    ) -> None:
        """One action per incident, each its own transaction: a refusal skips only that one."""
        for incident in queryset.order_by("id"):
            try:
                act(incident=incident, actor=request.user)
            except actions.TransitionNotAllowed as refused:
                allowed = ", ".join(refused.allowed) or "none"
                self.message_user(
                    request, f"#{incident.pk}: {refused} (allowed: {allowed})", messages.WARNING
                )
            else:
                self.message_user(request, f"#{incident.pk}: {done}.", messages.SUCCESS)


# The notification channels' admin lives in its own module; importing it registers it.
import incidents.admin_channels  # noqa: E402, F401
