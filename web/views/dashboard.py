"""The operator dashboard (/): filters, one page of services, live parts.

The page is server-rendered; its parts that change (counts, charts, tables) are also served
together as JSON (`?parts=1`, same filters) so console.js replaces them in place every
REFRESH_SECONDS without a reload. Without JavaScript the page reloads itself instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers

from noc.formatting import duration_label
from services.choices import ServiceStatus
from web import charts, sections, tables
from web.access import reader_required
from web.queries import dashboard

REFRESH_SECONDS = 15
# The live parts of the page, each a template under web/parts/ and an element data-live=<name>.
PARTS = ("counts", "checks", "services", "incidents", "slos", "sections", "updated")


def parse_filters(request: HttpRequest) -> dashboard.Filters:
    """The dashboard's query string; values it does not know are ignored (everything shown),
    never an error."""
    query = request.GET
    status = query.get("status", "")
    critical = {"yes": True, "no": False}.get(query.get("critical", ""))
    try:
        page = max(int(query.get("page", "1")), 1)
    except ValueError:
        page = 1
    return dashboard.Filters(
        tag=query.get("tag", "").strip()[:50],
        critical=critical,
        status=status if status in ServiceStatus.values else "",
        page=page,
    )


@reader_required
def home(request: HttpRequest) -> HttpResponse:
    """The operator dashboard, for every role."""
    board = dashboard.operator_dashboard(filters=parse_filters(request))
    context = dashboard_context(board)
    if request.GET.get("parts"):
        parts = {
            name: render_to_string(f"web/parts/dashboard_{name}.html", context, request=request)
            for name in PARTS
        }
        response = JsonResponse({"parts": parts})
        add_never_cache_headers(response)
        return response
    return render(request, "web/dashboard.html", context)


def dashboard_context(board: dashboard.OperatorDashboard) -> dict[str, Any]:
    filters = board.filters
    query = _query(filters)
    return {
        "board": board,
        "filters": filters,
        "statuses": ServiceStatus.choices,
        "refresh_seconds": REFRESH_SECONDS,
        "live_url": "?" + urlencode({**query, "page": filters.page, "parts": 1}),
        "page_links": _page_links(board, query),
        "status_links": {
            status: "?" + urlencode({**query, "status": status}) for status in ServiceStatus.values
        },
        "service_rows": tables.service_rows(board.services, now=board.now),
        "checks_chart": _checks_chart(board),
        "slo_rows": tables.slo_rows(board.slos_at_risk),
        "slos_shown": len(board.slos_at_risk),
        "incident_rows": tables.incident_rows(board.active_incidents, now=board.now),
        "incidents_shown": len(board.active_incidents),
        "incidents_not_shown": board.active_incidents_total - len(board.active_incidents),
        "slos_not_shown": board.slos_at_risk_total - len(board.slos_at_risk),
        "mtta": duration_label(board.stats["mtta_minutes"]["mean"]),
        "mtta_median": duration_label(board.stats["mtta_minutes"]["median"]),
        "mttr": duration_label(board.stats["mttr_minutes"]["mean"]),
        "mttr_median": duration_label(board.stats["mttr_minutes"]["median"]),
        "slos_at_risk_count": board.slos_at_risk_total,
        "sections": sections.render_all(board),
    }


def _query(filters: dashboard.Filters) -> dict[str, str]:
    query = {}
    if filters.tag:
        query["tag"] = filters.tag
    if filters.critical is not None:
        query["critical"] = "yes" if filters.critical else "no"
    return query


def _page_links(board: dashboard.OperatorDashboard, query: dict[str, str]) -> dict[str, str]:
    status = {"status": board.filters.status} if board.filters.status else {}
    links = {}
    if board.filters.page > 1:
        links["previous"] = "?" + urlencode({**query, **status, "page": board.filters.page - 1})
    if board.filters.page < board.pages:
        links["next"] = "?" + urlencode({**query, **status, "page": board.filters.page + 1})
    return links


def _checks_chart(board: dashboard.OperatorDashboard) -> str:
    bars = [
        charts.StackedBar(f"{hour:%H:00}", counts.up, counts.degraded, counts.down)
        for hour, counts in zip(board.hours, board.checks_per_hour, strict=True)
    ]
    return charts.stacked_bars(bars, label="Checks per hour (UTC), last 24 h, by outcome")
