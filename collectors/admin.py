"""Admin of the collectors app: definitions (with start and stop), runs (with stop and their
last error). Writes go through collectors.actions, which validate and audit."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from collectors import actions as collector_actions
from collectors.choices import RunStatus
from collectors.models import Collector, CollectorRun
from noc.admin import ActionsModelAdmin


class CollectorForm(forms.ModelForm):
    new_token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="A bearer token to store encrypted (never shown back); empty keeps the current.",
    )  # fmt: skip
    remove_token = forms.BooleanField(required=False)

    class Meta:
        model = Collector
        fields = [
            "name", "kind", "application", "enabled", "interval_seconds", "url",
            "timeout_seconds", "allow_private", "max_body_bytes", "metric_allow", "metric_deny",
            "extra_labels", "bearer_token_env", "json_paths", "price_path", "symbol", "timeframe",
        ]  # fmt: skip


@admin.register(Collector)
class CollectorAdmin(ActionsModelAdmin):
    form = CollectorForm
    list_display = ["name", "kind", "application", "interval_seconds", "enabled", "running_run"]
    list_filter = ["kind", "enabled", "timeframe"]
    search_fields = ["name", "url", "symbol"]
    readonly_fields = ["created_at", "updated_at", "has_token"]
    actions = ["start_runs", "stop_runs"]
    delete_action = staticmethod(collector_actions.collector_delete)
    instance_kwarg = "collector"

    @admin.display(description="running run")
    def running_run(self, collector: Collector) -> str:
        run = collector.runs.filter(status=RunStatus.RUNNING).first()
        return f"#{run.pk} since {run.started_at:%Y-%m-%d %H:%M}" if run else "—"

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        token = "" if data.get("remove_token") else (data.get("new_token") or None)
        names = [n for n in form.changed_data if n not in ("new_token", "remove_token")]
        if change:
            fields = {name: data[name] for name in names}
            collector_actions.collector_update(
                actor=request.user, collector=obj, token=token, **fields
            )
            return
        fields = {k: v for k, v in data.items() if k not in ("new_token", "remove_token")}
        created = collector_actions.collector_create(actor=request.user, token=token, **fields)
        for field in Collector._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False

    @admin.action(description="Start a run of the selected collectors")
    def start_runs(self, request: HttpRequest, queryset) -> None:
        for collector in queryset:
            try:
                run = collector_actions.collector_run_start(actor=request.user, collector=collector)
            except (
                collector_actions.RunAlreadyRunning,
                collector_actions.CollectorDisabled,
            ) as exc:
                messages.warning(request, str(exc))
            else:
                messages.success(request, f"{collector}: run {run.pk} started.")

    @admin.action(description="Stop the running runs of the selected collectors")
    def stop_runs(self, request: HttpRequest, queryset) -> None:
        runs = CollectorRun.objects.filter(collector__in=queryset, status=RunStatus.RUNNING)
        stopped = [
            run.pk
            for run in runs
            if collector_actions.collector_run_stop(actor=request.user, run=run)
        ]
        messages.success(request, f"{len(stopped)} run(s) stopped.")


@admin.register(CollectorRun)
class CollectorRunAdmin(admin.ModelAdmin):
    list_display = [
        "id", "collector", "status", "started_at", "stopped_at", "host", "pid",
        "last_heartbeat_at", "samples", "consecutive_failures", "last_error",
    ]  # fmt: skip
    list_filter = ["status", "collector__kind", "host"]
    search_fields = ["collector__name", "collector__symbol", "last_error"]
    list_select_related = ["collector"]
    actions = ["stop_runs"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description="Stop the selected runs")
    def stop_runs(self, request: HttpRequest, queryset) -> None:
        stopped = [
            r.pk
            for r in queryset
            if collector_actions.collector_run_stop(actor=request.user, run=r)
        ]
        messages.success(request, f"{len(stopped)} run(s) stopped.")
