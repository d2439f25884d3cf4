"""Dashboard sections that other apps contribute: "alerts firing" (observability's alert
rules) and "collectors in error" (collectors).

The console stands on top of every app, so a section is declared here, reading its app's
`queries.py`. To add one:

    SECTIONS.append(Section(
        name="alerts-firing",                       # the element id, stable for tests
        title="Alerts firing",
        template="web/sections/alerts_firing.html", # receives `section`, `board` and `rows`
        rows=lambda board: observability.queries.alerts_firing(tag=board.filters.tag),
    ))

`rows` must cost a fixed number of queries (the dashboard's query-count test holds every
section), and return a list; an empty list shows the section's empty state. Sections are
part of the live refresh: they are re-rendered with the rest of the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from collectors import queries as collector_queries
from web.queries import alerts

if TYPE_CHECKING:
    from web.queries.dashboard import OperatorDashboard


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    template: str
    rows: Callable[[OperatorDashboard], list[Any]]
    limit: int = 0  # the most rows `rows` returns (0: no limit)


COLLECTOR_ROWS = 20

SECTIONS: list[Section] = [
    Section(
        name="alerts-firing",
        title="Alerts firing",
        template="web/sections/alerts_firing.html",
        rows=lambda board: alerts.alerts_firing(board.filters),
    ),
    Section(
        name="collectors-in-error",
        title="Collectors in error",
        template="web/sections/collectors_in_error.html",
        # Collectors belong to no service: the dashboard's filters leave them as they are.
        rows=lambda board: collector_queries.runs_in_error(limit=COLLECTOR_ROWS),
        limit=COLLECTOR_ROWS,
    ),
]


def render_all(board: OperatorDashboard) -> SafeString:
    """Every registered section, in order, as one block of HTML (empty without sections)."""
    html = [
        render_to_string(
            section.template, {"section": section, "board": board, "rows": section.rows(board)}
        )
        for section in SECTIONS
    ]
    return mark_safe("".join(html))  # each part is a rendered, auto-escaped template
