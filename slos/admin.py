"""Admin of the slos app: SLOs with their budget bar, risk badge and recent history, and the
burn-rate alerts (read-only).

Saves go through slos.actions (validation and audit in one transaction) rather than the base
class's plain save, so an admin edit and an API edit do the same thing and audit once. SLOStatus
has a composite primary key, which the admin cannot address: its rows show on the SLO page.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from noc.admin import ActionsModelAdmin, AuditedModelAdmin
from slos import queries
from slos.actions import slo_create, slo_delete, slo_update
from slos.choices import AlertState, ViolationRisk
from slos.models import SLO, SLOAlert

RISK_COLORS = {
    ViolationRisk.NONE: "#1a7f37",
    ViolationRisk.LOW: "#4d8f2a",
    ViolationRisk.MEDIUM: "#bf8700",
    ViolationRisk.HIGH: "#bc4c00",
    ViolationRisk.CRITICAL: "#cf222e",
}
ALERT_COLORS = {AlertState.FIRING: "#cf222e", AlertState.RESOLVED: "#6e7781"}
STATUS_FIELDS = [
    "current_value", "compliant", "budget_total_minutes", "budget_remaining_minutes",
    "budget_used_minutes", "budget_remaining_percent", "burn_rate", "violation_risk",
    "budget_exhausted_at", "minutes_without_data", "calculated_at", "created_at", "updated_at",
    "recent_history",
]  # fmt: skip


def badge(label: str, color: str) -> str:
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 7px;border-radius:9px;'
        'font-weight:bold;white-space:nowrap">{}</span>',
        color,
        label,
    )


def budget_bar(percent: float | None) -> str:
    """A 100 px bar filled to the budget left: green, amber under 50 %, red under 25 %."""
    if percent is None:
        return "-"
    filled = max(0.0, min(100.0, percent))
    color = "#1a7f37" if filled >= 50 else "#bf8700" if filled >= 25 else "#cf222e"
    return format_html(
        '<div title="{}% left" style="display:inline-block;width:100px;height:10px;'
        'background:#eaeef2;border-radius:3px;vertical-align:middle">'
        '<div style="width:{}px;height:10px;background:{};border-radius:3px"></div></div> {}%',
        f"{percent:.1f}",
        f"{filled:.0f}",
        color,
        f"{percent:.1f}",
    )


@admin.register(SLO)
class SLOAdmin(ActionsModelAdmin):
    list_display = [
        "id", "name", "service", "sli_type", "target", "window", "enabled", "value",
        "compliant", "budget", "risk", "burn",
    ]  # fmt: skip
    list_filter = ["service", "violation_risk", "compliant", "sli_type", "window", "enabled"]
    list_select_related = ["service"]
    search_fields = ["id", "name", "description", "service__id", "service__name"]
    readonly_fields = STATUS_FIELDS
    fieldsets = [
        (None, {"fields": ["id", "name", "description", "owner", "service", "enabled"]}),
        ("Objective", {"fields": [
            "sli_type", "latency_threshold_ms", "target", "window", "time_zone",
            "budgeting_method",
        ]}),
        ("Metric SLI (ratio or histogram)", {"fields": [
            "good_metric", "total_metric", "histogram_metric", "histogram_threshold",
        ]}),
        ("Status (last evaluation)", {"fields": STATUS_FIELDS}),
    ]  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: SLO | None = None) -> list[str]:
        # The id is the slug URLs and the history rows refer to: set once.
        return [*self.readonly_fields, "id"] if obj else list(self.readonly_fields)

    # --- list columns

    @admin.display(description="value", ordering="current_value")
    def value(self, slo: SLO) -> str:
        return "-" if slo.current_value is None else f"{slo.current_value:.3f} %"

    @admin.display(description="budget left", ordering="budget_remaining_percent")
    def budget(self, slo: SLO) -> str:
        return budget_bar(slo.budget_remaining_percent)

    @admin.display(description="risk", ordering="violation_risk")
    def risk(self, slo: SLO) -> str:
        return badge(slo.violation_risk, RISK_COLORS.get(slo.violation_risk, "#6e7781"))

    @admin.display(description="burn rate (1 h)", ordering="burn_rate")
    def burn(self, slo: SLO) -> str:
        return "-" if slo.burn_rate is None else f"{slo.burn_rate:.2f}×"

    # --- change page

    @admin.display(description="recent history")
    def recent_history(self, slo: SLO) -> str:
        if slo._state.adding:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{r.time:%Y-%m-%d %H:%M}",
                    "-" if r.current_value is None else f"{r.current_value:.3f} %",
                    "-" if r.compliant is None else ("yes" if r.compliant else "no"),
                    f"{r.budget_remaining_minutes:.1f} / {r.budget_total_minutes:.1f}",
                    "-" if r.burn_rate is None else f"{r.burn_rate:.2f}×",
                    badge(r.violation_risk, RISK_COLORS.get(r.violation_risk, "#6e7781")),
                )
                for r in queries.slo_recent_history(slo.pk)
            ),
        )
        if not rows:
            return "Not evaluated yet."
        return format_html(
            "<table><thead><tr><th>time (UTC)</th><th>value</th><th>compliant</th>"
            "<th>budget left (min)</th><th>burn rate</th><th>risk</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    # --- writes through the actions (they audit; the base class's audit is not used)

    create_action = staticmethod(slo_create)
    update_action = staticmethod(slo_update)
    delete_action = staticmethod(slo_delete)
    instance_kwarg = "slo"


@admin.register(SLOAlert)
class SLOAlertAdmin(AuditedModelAdmin):
    """Written by the evaluation only: shown, never edited."""

    list_display = [
        "slo", "rule", "severity", "colored_state", "threshold", "long_burn", "short_burn",
        "fired_at", "resolved_at", "incident",
    ]  # fmt: skip
    list_filter = ["state", "severity", "rule", "slo__service"]
    list_select_related = ["slo", "incident"]
    search_fields = ["slo__id", "slo__name", "rule"]
    date_hierarchy = "fired_at"

    @admin.display(description="state", ordering="state")
    def colored_state(self, alert: SLOAlert) -> str:
        return badge(alert.state, ALERT_COLORS.get(alert.state, "#6e7781"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SLOAlert | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SLOAlert | None = None) -> bool:
        return False
