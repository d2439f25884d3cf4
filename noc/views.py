"""The pages people read: the operator dashboard (/) and the public status page (/status/).

Both are server-rendered HTML with inline SVG charts (noc/charts.py) and no JavaScript; their
data comes from noc/dashboard.py in a fixed number of queries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.cache import patch_cache_control

from noc import charts, dashboard

if TYPE_CHECKING:
    from slos.models import SLO

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 30
STATUS_PAGE_CACHE_KEY = "noc:status-page:v1"
STATUS_PAGE_CACHE_SECONDS = 30


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The operator dashboard, for every role; it reloads itself every 30 seconds."""
    board = dashboard.operator_dashboard()
    return render(request, "noc/dashboard.html", _dashboard_context(board))


def _dashboard_context(board: dashboard.OperatorDashboard) -> dict[str, Any]:
    return {
        "board": board,
        "refresh_seconds": REFRESH_SECONDS,
        "service_rows": [_service_row(line) for line in board.services],
        "checks_chart": _checks_chart(board),
        "slo_rows": [_slo_row(slo) for slo in board.slos_at_risk],
        "mtta": _duration(board.stats["mtta_minutes"]["mean"]),
        "mtta_median": _duration(board.stats["mtta_minutes"]["median"]),
        "mttr": _duration(board.stats["mttr_minutes"]["mean"]),
        "mttr_median": _duration(board.stats["mttr_minutes"]["median"]),
        "slos_at_risk_count": len(board.slos_at_risk),
    }


def _slo_row(slo: SLO) -> dict[str, Any]:
    return {"slo": slo, "bar": charts.budget_bar(slo.budget_remaining_percent)}


def _service_row(line: dashboard.ServiceLine) -> dict[str, Any]:
    label = f"{line.service.name}: average response time per hour, last 24 h"
    return {
        "service": line.service,
        # Rounded down, as the status page's cells are: 99.899 never reads 99.90.
        "uptime": _percent(line.uptime_24h_percent),
        "sparkline": charts.sparkline(line.response_times, label=label),
    }


def _percent(value: float | None) -> str | None:
    return None if value is None else charts.percent_label(value)


def _checks_chart(board: dashboard.OperatorDashboard) -> str:
    bars = [
        charts.StackedBar(f"{hour:%H:00}", counts.up, counts.degraded, counts.down)
        for hour, counts in zip(board.hours, board.checks_per_hour, strict=True)
    ]
    return charts.stacked_bars(bars, label="Checks per hour (UTC), last 24 h, by outcome")


def _duration(minutes: float | None) -> str:
    """12 min, 3 h 05 min, 2 d 4 h: as precise as a glance at the dashboard needs."""
    if minutes is None:
        return "—"
    if minutes < 1:
        return "< 1 min"
    whole = round(minutes)
    if whole < 60:
        return f"{whole} min"
    if whole < 24 * 60:
        return f"{whole // 60} h {whole % 60:02d} min"
    return f"{whole // (24 * 60)} d {whole % (24 * 60) // 60} h"


def status_page(request: HttpRequest) -> HttpResponse:
    """The public status page, without login.

    It lists every enabled service that is not tagged `internal`, with its current status and
    a 90-day uptime bar, the active incidents of those services and those resolved in the last
    7 days. It shows names, statuses, incident titles and times only: no URL, no error message,
    no incident summary. The rendered page is cached for 30 seconds, shared by every visitor,
    so it never depends on the request (rendered without one).
    """
    html = _cached(STATUS_PAGE_CACHE_KEY, STATUS_PAGE_CACHE_SECONDS, _render_status_page)
    response = HttpResponse(html)
    patch_cache_control(response, public=True, max_age=STATUS_PAGE_CACHE_SECONDS)
    return response


def _render_status_page() -> str:
    status = dashboard.public_status()
    bars = [
        charts.uptime_bar(line.days, label=f"{line.name}: uptime per day, last 90 days")
        for line in status.services
    ]
    return render_to_string(
        "noc/status.html", {"status": status, "rows": list(zip(status.services, bars, strict=True))}
    )


def _cached(key: str, seconds: int, build: Callable[[], str]) -> str:
    """The cached value, or a fresh one. A status page must stay up while Redis is down, so a
    cache error costs a render, not the page."""
    try:
        value = cache.get(key)
    except Exception:
        logger.warning("status page: cache unavailable", exc_info=True)
        return build()
    if value is None:
        value = build()
        try:
            cache.set(key, value, seconds)
        except Exception:
            logger.warning("status page: cache unavailable", exc_info=True)
    return value
