"""Admin of the observability app: applications (with their ingest keys), ingest keys, alert
rules, alerts (acknowledge, silence), the log outbox (read-only), and a read-only page of recent
spans (Django's admin cannot register a model with a composite primary key: the page is a view
of the applications' admin).

Writes go through observability.actions, which validate and audit. A new key is shown once,
in the message that follows its creation.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from noc.admin import ActionsModelAdmin
from observability.actions import (
    alert_acknowledge,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alert_silence,
    application_create,
    application_delete,
    application_update,
    ingest_key_create,
    ingest_key_revoke,
)
from observability.models import Alert, AlertRule, Application, IngestKey, LogOutbox, Span
from observability.queries import alerts_by_severity

KEY_FIELDS = ["name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
SPAN_PAGE = 100
SPAN_WINDOW = timedelta(minutes=15)  # a day partition holds millions: the page sorts a few
TRACE_ID = re.compile(r"[0-9a-f]{32}")


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

    def get_urls(self):
        spans = path(
            "spans/", self.admin_site.admin_view(self.spans_view), name="observability_span_list"
        )
        return [spans, *super().get_urls()]

    def spans_view(self, request: HttpRequest) -> TemplateResponse:
        """The last SPAN_PAGE spans of the last SPAN_WINDOW, or the spans of one trace."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        trace_id = request.GET.get("trace_id", "").strip().lower()
        spans = Span.objects.select_related("application").order_by("-start_time")
        error, explanation = (
            "",
            f"The last {SPAN_PAGE} spans of the last {SPAN_WINDOW.seconds // 60} minutes.",
        )
        if trace_id and not TRACE_ID.fullmatch(trace_id):
            error, spans = "A trace id is 32 hexadecimal digits.", spans.none()
        elif trace_id:
            spans, explanation = spans.filter(trace_id=trace_id), f"Spans of trace {trace_id}."
        else:
            spans = spans.filter(start_time__gte=timezone.now() - SPAN_WINDOW)
        rows = list(spans[:SPAN_PAGE])
        for span in rows:
            span.duration_ms = span.duration_us / 1000
        context = {
            **self.admin_site.each_context(request),
            "title": "Recent spans", "spans": rows, "trace_id": trace_id, "error": error,
            "explanation": explanation, "opts": self.model._meta,
        }  # fmt: skip
        return TemplateResponse(request, "admin/observability/span_list.html", context)

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


@admin.register(AlertRule)
class AlertRuleAdmin(ActionsModelAdmin):
    list_display = ["name", "metric", "aggregation", "condition", "threshold", "window_seconds",
                    "for_seconds", "severity", "enabled"]  # fmt: skip
    list_filter = ["enabled", "severity", "aggregation", "condition"]
    list_select_related = ["application", "service"]
    search_fields = ["name", "metric", "description"]
    filter_horizontal = ["channels"]
    readonly_fields = ["created_at", "updated_at"]

    create_action = staticmethod(alert_rule_create)
    update_action = staticmethod(alert_rule_update)
    delete_action = staticmethod(alert_rule_delete)
    instance_kwarg = "rule"


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["rule", "status", "severity", "labels", "started_at", "fired_at", "ended_at",
                    "value", "last_value", "acknowledged_at", "silenced_until"]  # fmt: skip
    list_filter = ["status", "severity", "rule"]
    list_select_related = ["rule"]
    readonly_fields = [f.name for f in Alert._meta.fields]
    actions = ["acknowledge", "silence_for_an_hour"]

    def get_queryset(self, request: HttpRequest):
        return alerts_by_severity().select_related("rule")

    def has_add_permission(self, request) -> bool:
        return False  # alerts come from evaluation only

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Acknowledge selected alerts", permissions=["change"])
    def acknowledge(self, request, queryset) -> None:
        with transaction.atomic():
            for alert in queryset:
                alert_acknowledge(alert=alert, actor=request.user)

    @admin.action(description="Silence selected alerts for an hour", permissions=["change"])
    def silence_for_an_hour(self, request, queryset) -> None:
        with transaction.atomic():
            for alert in queryset:
                alert_silence(alert=alert, actor=request.user, minutes=60)


@admin.register(LogOutbox)
class LogOutboxAdmin(admin.ModelAdmin):
    """What waits for Elasticsearch: read-only (the drain task empties it)."""

    list_display = ["id", "created_at", "line_count", "attempts", "next_attempt_at", "last_error"]
    readonly_fields = ["created_at", "line_count", "attempts", "next_attempt_at", "last_error"]
    exclude = ["documents"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
