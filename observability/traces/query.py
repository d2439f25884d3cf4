"""Reading traces: the trace list (one row per trace, newest first) and one trace's span tree.

A trace is every span with its trace id. The list takes the traces with at least one span in
the range matching every filter (application, service, name, status, and `min_duration_us`:
a span at least that long, as Jaeger reads it; a trace lasts at least as long as any of its
spans), newest first by their first matching span, then reads each trace of the page whole
within a day of the range (a trace lasting longer is seen in part): its start (its first span),
end (its last span's end), duration, span and error counts and its root span: the first span
without a parent or, when none arrived, its first span.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.utils import OperationalError

from observability.points import from_us, to_us
from observability.timeseries import SPANS

TABLE = SPANS.table
# Spans of a trace are looked for this far around the list's range.
TRACE_REACH = timedelta(days=1)
STATEMENT_TIMEOUT_MS = 10_000
MAX_TREE_SPANS = 10_000
MAX_TREE_DEPTH = 100  # deeper spans are listed at the top (JSON nesting stays shallow)
SPAN_COLUMNS = (
    "s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, a.slug, s.service, s.start_time, "
    "s.end_time, s.duration_us, s.status_code, s.status_message, s.attributes, s.events, s.links"
)


class TraceQueryTooCostly(Exception):
    """The list's statement ran past its timeout: the caller should narrow the range."""


@dataclass
class TraceFilter:
    since: datetime
    until: datetime
    application_id: int | None = None
    service: str = ""
    name: str = ""
    status: str = ""
    min_duration_us: int = 0
    after: tuple[int, str] | None = None  # the last row's (key_us, trace id): the next page
    size: int = 50


@dataclass
class TraceRow:
    trace_id: str
    start: datetime
    end: datetime
    duration_us: int
    span_count: int
    error_count: int
    root: dict = field(default_factory=dict)
    key_us: int = 0  # its first matching span's start: the page order and the cursor


def _span(row) -> dict:
    (trace_id, span_id, parent, name, kind, slug, service, start, end, duration_us, code,
     message, attributes, events, links) = row  # fmt: skip
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent or None,
        "name": name,
        "kind": kind,
        "application": slug or "",
        "service": service,
        "start": start,
        "end": end,
        "duration_ms": duration_us / 1000,
        "status": {"code": code, "message": message},
        "attributes": _loaded(attributes),
        "events": _loaded(events),
        "links": _loaded(links),
    }


def _loaded(value):
    return json.loads(value) if isinstance(value, str) else value


def trace_page(query: TraceFilter) -> list[TraceRow]:
    """At most `query.size + 1` rows (one more than the page says there is a next one). The
    page is chosen from the matching spans alone (one grouping over the range, which the span
    filters narrow); only the page's traces are then read whole."""
    where, params = ["start_time >= %s", "start_time < %s"], [query.since, query.until]
    for condition, value in (
        ("application_id = %s", query.application_id),
        ("service = %s", query.service),
        ("name = %s", query.name),
        ("status_code = %s", query.status),
        ("duration_us >= %s", query.min_duration_us),
    ):
        if value:
            where.append(condition)
            params.append(value)
    after = ""
    if query.after is not None:
        after = "HAVING (min(start_time), trace_id) < (%s, %s)"
        params += [from_us(query.after[0]), query.after[1]]
    sql = (
        f"SELECT trace_id, min(start_time) FROM {TABLE} WHERE {' AND '.join(where)} "
        f"GROUP BY trace_id {after} ORDER BY 2 DESC, 1 DESC LIMIT %s"
    )
    page = _bounded(sql, [*params, query.size + 1])
    if not page:
        return []
    reach = [query.since - TRACE_REACH, query.until + TRACE_REACH]
    whole = _whole([trace_id for trace_id, _ in page], reach)
    roots = _roots([trace_id for trace_id, _ in page], reach)
    traces = []
    for trace_id, first in page:
        if trace_id not in whole:  # dropped by retention between the two reads
            continue
        start, end, count, errors = whole[trace_id]
        traces.append(
            TraceRow(trace_id, start, end, to_us(end) - to_us(start), count, errors,
                     roots.get(trace_id, {}), to_us(first))
        )  # fmt: skip
    return traces


def _whole(trace_ids: list[str], reach: list[datetime]) -> dict[str, tuple]:
    """Start, end, span and error counts of each trace, over all its spans near the range."""
    sql = (
        "SELECT trace_id, min(start_time), max(end_time), count(*), "
        f"count(*) FILTER (WHERE status_code = 'error') FROM {TABLE} "
        "WHERE trace_id = ANY(%s) AND start_time >= %s AND start_time < %s GROUP BY trace_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [trace_ids, *reach])
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _bounded(sql: str, params: list) -> list[tuple]:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
            cursor.execute(sql, params)
            return cursor.fetchall()
    except OperationalError as exc:
        if "statement timeout" in str(exc):
            raise TraceQueryTooCostly from exc
        raise


def _roots(trace_ids: list[str], reach: list[datetime]) -> dict[str, dict]:
    if not trace_ids:
        return {}
    sql = (
        f"SELECT DISTINCT ON (s.trace_id) {SPAN_COLUMNS} FROM {TABLE} s "
        "LEFT JOIN observability_application a ON a.id = s.application_id "
        "WHERE s.trace_id = ANY(%s) AND s.start_time >= %s AND s.start_time < %s "
        "ORDER BY s.trace_id, s.parent_span_id <> '', s.start_time, s.span_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [trace_ids, *reach])
        return {row[0]: _span(row) for row in cursor.fetchall()}


# --- one trace --------------------------------------------------------------------------------


@dataclass
class Trace:
    trace_id: str
    spans: list[dict]  # the tree's top: roots and orphans, children nested
    span_count: int
    truncated: bool
    start: datetime
    end: datetime
    services: list[str]
    applications: list[str]
    error_count: int


def trace_get(trace_id: str) -> Trace | None:
    sql = (
        f"SELECT {SPAN_COLUMNS} FROM {TABLE} s "
        "LEFT JOIN observability_application a ON a.id = s.application_id "
        "WHERE s.trace_id = %s ORDER BY s.start_time, s.span_id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [trace_id, MAX_TREE_SPANS + 1])
        rows = cursor.fetchall()
    if not rows:
        return None
    spans = [_span(row) for row in rows[:MAX_TREE_SPANS]]
    return Trace(
        trace_id=trace_id,
        spans=span_tree(spans),
        span_count=len(spans),
        truncated=len(rows) > MAX_TREE_SPANS,
        start=min(s["start"] for s in spans),
        end=max(s["end"] for s in spans),
        services=sorted({s["service"] for s in spans if s["service"]}),
        applications=sorted({s["application"] for s in spans if s["application"]}),
        error_count=sum(1 for s in spans if s["status"]["code"] == "error"),
    )


def span_tree(spans: list[dict]) -> list[dict]:
    """Nest each span under its parent (children in start order). Roots and orphans (a parent
    that is not in the trace) are the top, in start order, orphans marked; so are spans in a
    parent cycle (malformed input) and spans deeper than MAX_TREE_DEPTH."""
    by_id: dict[str, dict] = {}
    for span in spans:
        span["children"], span["orphan"] = [], False
        by_id.setdefault(span["span_id"], span)
    top = []
    for span in spans:
        parent = by_id.get(span["parent_span_id"] or "")
        if parent is None or parent is span:
            span["orphan"] = bool(span["parent_span_id"])
            top.append(span)
        else:
            parent["children"].append(span)
    placed: set[int] = set()
    result = []
    pending = list(top)
    while True:
        for span in pending:
            result.append(span)
            _place(span, placed, result)
        # What is still unplaced hangs in a parent cycle: break it at its first span.
        unplaced = [s for s in spans if id(s) not in placed]
        if not unplaced:
            break
        first = unplaced[0]
        parent = by_id[first["parent_span_id"]]
        parent["children"].remove(first)
        first["orphan"] = True
        pending = [first]
    result.sort(key=lambda s: (s["start"], s["span_id"]))
    return result


def _place(root: dict, placed: set[int], top: list[dict]) -> None:
    """Mark `root`'s subtree placed; a span past the depth limit moves to `top`."""
    stack = [(root, 0)]
    placed.add(id(root))
    while stack:
        span, depth = stack.pop()
        if depth >= MAX_TREE_DEPTH and span["children"]:
            moved, span["children"] = span["children"], []
            for child in moved:
                top.append(child)
                placed.add(id(child))
                stack.append((child, 0))
            continue
        for child in span["children"]:
            placed.add(id(child))
            stack.append((child, depth + 1))
