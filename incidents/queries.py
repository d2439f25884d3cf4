"""Reads of the incidents app: the querysets the API and admin list, and incident statistics
computed in one SQL statement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Prefetch, QuerySet

from incidents.choices import ACTIVE_STATUSES, IncidentStatus, Severity
from incidents.models import Incident, IncidentEvent, IncidentUpdate

# Every user a list row names, joined in the same query so a page costs one query.
LIST_RELATED = ("service", "assignee", "acknowledged_by", "resolved_by", "closed_by")
MINUTES = 2  # decimals of the durations reported


def incidents_for_list() -> QuerySet[Incident]:
    return Incident.objects.select_related(*LIST_RELATED)


def incidents_with_timeline() -> QuerySet[Incident]:
    """With the timeline and the public updates (one query each)."""
    timeline = IncidentEvent.objects.select_related("actor").order_by("time", "id")
    updates = IncidentUpdate.objects.select_related("author").order_by("-time", "-id")
    return incidents_for_list().prefetch_related(
        Prefetch("events", queryset=timeline), Prefetch("public_updates", queryset=updates)
    )


def incident_active_for(service_id: str) -> Incident | None:
    """The service's active incident (at most one: a partial unique constraint holds it)."""
    return (
        incidents_with_timeline().filter(service_id=service_id, status__in=ACTIVE_STATUSES).first()
    )


# --- statistics -------------------------------------------------------------------------------

# Three scans of the scoped rows, no sort but the medians' and nothing spilled to disk: the
# summary (counts by severity and status as FILTERed counts in the same pass), one hash aggregate
# by (service, day) that the outer query rolls up both ways, and the resolutions per day.
# date_part, not extract: it returns float8, which averages and sorts far faster than numeric.
# The CTEs are NOT MATERIALIZED so each scan applies its own filter to the table itself.
STATS_SQL = """
WITH scoped AS NOT MATERIALIZED (
    SELECT i.service_id, i.severity, i.status, i.detected_at, i.acknowledged_at, i.resolved_at,
           i.impact_started_at
    FROM incidents_incident i {scope_join}
    WHERE true {scope}
),
cohort AS NOT MATERIALIZED (
    SELECT * FROM scoped WHERE detected_at >= %(start)s AND detected_at < %(end)s
),
summary AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved,
           count(*) FILTER (WHERE acknowledged_at IS NULL) AS unacknowledged,
           avg(ack) / 60 AS mtta_mean,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ack) / 60 AS mtta_median,
           avg(repair) / 60 AS mttr_mean,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY repair) / 60 AS mttr_median,
           json_build_object({by_severity}) AS by_severity,
           json_build_object({by_status}) AS by_status
    FROM cohort,
         LATERAL (SELECT date_part('epoch', acknowledged_at - detected_at) AS ack,
                         date_part('epoch', resolved_at - impact_started_at) AS repair) AS d
),
opened AS MATERIALIZED (
    SELECT service_id, (detected_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
    FROM cohort GROUP BY 1, 2
),
resolved_days AS (
    SELECT (resolved_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
    FROM scoped WHERE resolved_at >= %(start)s AND resolved_at < %(end)s
    GROUP BY 1
),
days AS (
    SELECT day::date AS day
    FROM generate_series(
        date_trunc('day', %(start)s::timestamptz AT TIME ZONE 'UTC'),
        %(end)s::timestamptz AT TIME ZONE 'UTC' - interval '1 microsecond',
        interval '1 day'
    ) AS day
)
SELECT summary.*,
    (SELECT count(*) FROM scoped WHERE status = ANY(%(active)s)) AS active,
    (SELECT coalesce(json_agg(json_build_object('service', c.service_id, 'name', s.name,
                                                'count', c.n) ORDER BY c.n DESC, c.service_id),
                     '[]')
     FROM (SELECT service_id, sum(n) AS n FROM opened GROUP BY 1) c
     JOIN services_service s ON s.id = c.service_id) AS by_service,
    (SELECT json_agg(json_build_object('date', to_char(days.day, 'YYYY-MM-DD'),
                                       'opened', coalesce(o.n, 0),
                                       'resolved', coalesce(r.n, 0)) ORDER BY days.day)
     FROM days
     LEFT JOIN (SELECT day, sum(n) AS n FROM opened GROUP BY 1) o ON o.day = days.day
     LEFT JOIN resolved_days r ON r.day = days.day) AS daily
FROM summary
"""


def _counts_by(column: str, values: list[str]) -> str:
    """json_build_object arguments: 'value', count(*) FILTER (WHERE column = 'value'), …
    The values are the choices' own (lowercase identifiers), never user input."""
    return ", ".join(f"'{v}', count(*) FILTER (WHERE {column} = '{v}')" for v in values)


def incident_stats(
    *,
    start: datetime,
    end: datetime,
    service: str | None = None,
    tag: str | None = None,
    severity: str | None = None,
) -> dict[str, Any]:
    """Incident statistics over [start, end), in one SQL statement.

    The figures describe the incidents *detected* in the range (the cohort): `total`,
    `resolved` (those with a resolution, closed included), `unacknowledged`, and counts by
    severity, status and service. `active` is the number active now, whatever the range.

    Durations come from the explicit timestamps, never from status changes, so an automatic
    resolve does not flatter them:
    - MTTA = acknowledged_at − detected_at, over acknowledged incidents only. Incidents nobody
      acknowledged (auto-resolved ones among them) are left out and counted as `unacknowledged`.
    - MTTR = resolved_at − impact_started_at, over resolved incidents only: it counts from the
      first failing check, so waiting for the failure threshold before opening is not hidden.
    Both are given in minutes as mean and median (percentile_cont(0.5)); null without data.

    `daily` has one row per UTC day of the range (empty days are 0): `opened` counts
    detections, `resolved` resolutions that happened that day (of any incident, so it also
    counts incidents opened before the range).
    """
    scope_join, scope, params = _scope(service=service, tag=tag, severity=severity)
    sql = STATS_SQL.format(
        scope_join=scope_join,
        scope=scope,
        by_severity=_counts_by("severity", Severity.values),
        by_status=_counts_by("status", IncidentStatus.values),
    )
    params |= {"start": start, "end": end, "active": list(ACTIVE_STATUSES)}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [c.name for c in cursor.description]
        row = dict(zip(columns, cursor.fetchone(), strict=True))
    return _shape(row, start=start, end=end)


def _scope(
    *, service: str | None, tag: str | None, severity: str | None
) -> tuple[str, str, dict[str, Any]]:
    """The filters as SQL fragments; values always travel as parameters."""
    conditions, params = [], {}
    if service:
        conditions.append("AND i.service_id = %(service)s")
        params["service"] = service
    if severity:
        conditions.append("AND i.severity = %(severity)s")
        params["severity"] = severity
    join = ""
    if tag:
        # tags @> ARRAY[tag] is the operator the GIN index on service tags serves.
        join = "JOIN services_service scope_s ON scope_s.id = i.service_id"
        conditions.append("AND scope_s.tags @> ARRAY[%(tag)s]::varchar[]")
        params["tag"] = tag
    return join, " ".join(conditions), params


def _shape(row: dict[str, Any], *, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "from": start,
        "to": end,
        "total": row["total"],
        "active": row["active"],
        "resolved": row["resolved"],
        "unacknowledged": row["unacknowledged"],
        "mtta_minutes": _durations(row, "mtta"),
        "mttr_minutes": _durations(row, "mttr"),
        # Every value is present, zero when no incident has it, so clients need no defaults.
        "by_severity": {value: row["by_severity"].get(value, 0) for value in Severity.values},
        "by_status": {value: row["by_status"].get(value, 0) for value in IncidentStatus.values},
        "by_service": row["by_service"],
        "daily": row["daily"] or [],
    }


def _durations(row: dict[str, Any], name: str) -> dict[str, float | None]:
    return {"mean": _minutes(row[f"{name}_mean"]), "median": _minutes(row[f"{name}_median"])}


def _minutes(value) -> float | None:
    return None if value is None else round(float(value), MINUTES)
