"""An SLO's page (/slos/<id>/): SLI against target, the budget burn-down over the window, the
burn rate of each alert rule's windows against its threshold, alerts and history."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from accounts.choices import Role
from noc.formatting import budget_minutes_label
from slos.models import SLO
from web import charts
from web.access import may, reader_required
from web.queries import slo as queries


@reader_required
def slo_detail(request: HttpRequest, slo_id: str) -> HttpResponse:
    slo = get_object_or_404(SLO.objects.select_related("service", "owner"), pk=slo_id)
    page = queries.slo_page(slo)
    return render(
        request, "web/slo.html", slo_context(page, may_edit=may(request.user, Role.ADMIN))
    )


def slo_context(page: queries.SloPage, *, may_edit: bool) -> dict[str, Any]:
    return {
        "page": page,
        "slo": page.slo,
        "burn_down": _burn_down_chart(page),
        "may_edit": may_edit,
    }


def _burn_down_chart(page: queries.SloPage) -> str:
    """Budget left (minutes) over the window, with the budget's total as the reference: a line
    that falls to zero at the window's end spends the budget exactly."""
    burn = page.burn_down
    points = burn.points
    spans_days = (burn.window_end - burn.window_start).days >= 2
    return charts.line_chart(
        [p.time for p in points],
        [
            charts.Series(
                "budget left (min)",
                [p.budget_remaining_minutes for p in points],
                "#2f9e5b",
                "series-budget",
            )
        ],
        label=f"{page.slo.name}: error budget left over the window, in minutes",
        start=burn.window_start,
        end=burn.window_end,
        reference=(
            burn.budget_total_minutes,
            f"budget {budget_minutes_label(burn.budget_total_minutes)}",
        ),
        time_format="%m-%d" if spans_days else "%H:%M",
    )
