"""Reads of the operator dashboard: counts, one page of services with their last 24 hours,
checks per hour, active incidents, SLOs at risk and incident statistics.

The dashboard costs a fixed number of set-based queries whatever the number of services: the
status counts are one grouped query, the services table shows one page (problems first) and
only that page's hourly series is read, the fleet's checks per hour are aggregated in SQL.
Filters (tag, critical) scope everything on the page; the status filter narrows the table.

The three tables (services, incidents, SLOs) are read in SQL written here into small rows of
what they show: through the ORM, building and compiling those queries and making model
instances of their rows was 9 ms of the page's CPU, the queries themselves 1 ms.

What changes slowly is kept in the cache for KEPT_SECONDS (a minute), keyed by the hour so
the 24-hour window moves on the hour at once: the fleet's checks per hour (a join of every
service's hourly rows, the page's costliest query) with the tags in use and the 30-day
incident statistics, per filter; and the 24-hour series of a page of services (uptime and
sparklines), per page. They come from the rollups, refreshed every 15 s, and from incidents
of the last 30 days: up to a minute behind is what they may be. The counts by status, the
services' status and last check, the incidents, the SLOs and the sections are read on every
request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from incidents.choices import ACTIVE_STATUSES, SEVERITY_RANK
from incidents.queries import incident_stats
from services.choices import ServiceStatus
from services.models import Service
from slos.choices import RISK_RANK, ViolationRisk
from web.caching import cached
from web.queries.rollups import Hour, HourlySeries, fleet_hours, hour_starts, hourly_series

PAGE_SIZE = 100
# How long the slowly changing parts are kept (see the module's docstring).
KEPT_SECONDS = 60
# Rows of the incident and SLO tables (the counts above them cover all): 100 active
# incidents were a third of the page.
TABLE_ROWS = 25
# Most severe first; a value outside the list (none today) after them.
SEVERITY_ORDER = [s.value for s in sorted(SEVERITY_RANK, key=lambda s: -SEVERITY_RANK[s])]
STATS_WINDOW = timedelta(days=30)
# Under half the budget left or burning at 3× or more (slos/budget.py's violation_risk).
AT_RISK = (ViolationRisk.MEDIUM, ViolationRisk.HIGH, ViolationRisk.CRITICAL)
# Most at risk first.
RISK_ORDER = [str(r) for r in sorted(RISK_RANK, key=lambda r: -RISK_RANK[r])]
# Problems first, then what runs, then what does not run at all.
STATUS_ORDER = (
    ServiceStatus.DOWN,
    ServiceStatus.DEGRADED,
    ServiceStatus.UNKNOWN,
    ServiceStatus.MAINTENANCE,
    ServiceStatus.UP,
    ServiceStatus.PAUSED,
)


@dataclass(frozen=True)
class Filters:
    """What the dashboard is narrowed to; empty values mean everything."""

    tag: str = ""
    critical: bool | None = None
    status: str = ""
    page: int = 1

    @property
    def active(self) -> bool:
        return bool(self.tag or self.critical is not None or self.status)

    def scope(self) -> Q:
        """Services within the tag and critical filters (not the status: the counts show every
        status of the scope, the table only the chosen one)."""
        q = Q()
        if self.tag:
            q &= Q(tags__contains=[self.tag])
        if self.critical is not None:
            q &= Q(critical=self.critical)
        return q

    def scope_sql(self, service: str) -> tuple[str, dict[str, Any]]:
        """scope() as SQL conditions on the services table aliased `service` (each starting
        with AND; none without filters), and their parameters."""
        sql, params = "", {}
        if self.tag:
            sql += f" AND {service}.tags @> ARRAY[%(tag)s]::varchar[]"
            params["tag"] = self.tag
        if self.critical is not None:
            sql += f" AND {service}.critical = %(critical)s"
            params["critical"] = self.critical
        return sql, params


@dataclass(frozen=True)
class ServiceRow:
    """What the services table shows of a service (its row also holds URLs, headers and
    secrets: never read here)."""

    id: str
    name: str
    status: str
    critical: bool
    last_checked_at: datetime | None
    last_response_time_ms: float | None


@dataclass(frozen=True)
class IncidentRow:
    """What the active incidents table shows of an incident."""

    pk: int
    title: str
    severity: str
    status: str
    service_id: str
    service_name: str
    impact_started_at: datetime
    detected_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None  # the username


@dataclass(frozen=True)
class SloRow:
    """What the SLOs at risk table shows of an SLO, and `total`: how many are at risk."""

    id: str
    name: str
    service_id: str | None  # None: a metric SLO about no service
    service_name: str | None
    target: Decimal
    window: str
    current_value: float | None
    budget_remaining_percent: float | None
    burn_rate: float | None
    violation_risk: str
    total: int


@dataclass(frozen=True)
class ServiceLine:
    service: ServiceRow
    hours: HourlySeries  # over OperatorDashboard.hours

    @property
    def uptime_24h_percent(self) -> float | None:
        """Up or degraded of all checks over the 24 hourly buckets (up to 25 hours: the
        current hour is partial); maintenance left out."""
        return self.hours.uptime_percent

    @property
    def response_times(self) -> tuple[float | None, ...]:
        return self.hours.response_times


@dataclass(frozen=True)
class OperatorDashboard:
    now: datetime
    filters: Filters
    tags: list[str]  # every tag in use, for the filter
    hours: list[datetime]
    status_counts: dict[str, int]  # every ServiceStatus value of the scope, zero included
    services: list[ServiceLine]  # one page of the table
    services_matching: int  # rows of the table over all pages
    page_size: int
    checks_per_hour: list[Hour]  # the scope's services together, one per hour
    active_incidents: list[IncidentRow]  # the TABLE_ROWS most severe
    active_incidents_total: int
    incidents_by_severity: dict[str, int]  # every Severity value, most severe first
    slos_at_risk: list[SloRow]  # the TABLE_ROWS most at risk
    slos_at_risk_total: int
    stats: dict[str, Any]  # incident_stats over the last 30 days (tag filter only)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.services_matching // self.page_size))


def operator_dashboard(
    *, filters: Filters | None = None, now: datetime | None = None
) -> OperatorDashboard:
    filters = filters or Filters()
    now = now or timezone.now()
    hours = hour_starts(now)
    counts = status_counts(filters)
    matching = counts[filters.status] if filters.status in counts else sum(counts.values())
    page = min(max(filters.page, 1), max(1, -(-matching // PAGE_SIZE)))
    services = services_page(filters, page)
    series = kept_hourly_series([s.id for s in services], hours)
    slow = kept_figures(filters, hours, now)
    incidents, by_severity = active_incidents(filters)
    at_risk = slos_at_risk(filters)
    return OperatorDashboard(
        now=now,
        filters=filters,
        tags=slow.tags,
        hours=hours,
        status_counts=counts,
        services=[ServiceLine(s, series[s.id]) for s in services],
        services_matching=matching,
        page_size=PAGE_SIZE,
        checks_per_hour=slow.checks_per_hour,
        active_incidents=incidents,
        active_incidents_total=sum(by_severity.values()),
        incidents_by_severity=by_severity,
        slos_at_risk=at_risk,
        slos_at_risk_total=at_risk[0].total if at_risk else 0,
        stats=slow.stats,
    )


@dataclass(frozen=True)
class SlowFigures:
    """The parts of the page that change slowly, kept together (one cache read)."""

    checks_per_hour: list[Hour]
    stats: dict[str, Any]
    tags: list[str]


def kept_figures(filters: Filters, hours: list[datetime], now: datetime) -> SlowFigures:
    """The fleet's checks per hour and the incident statistics of the filters' scope, and the
    tags in use, as computed within the last KEPT_SECONDS for the same hours."""

    def compute() -> tuple:
        fleet = fleet_hours(hours, tag=filters.tag, critical=filters.critical)
        stats = incident_stats(start=now - STATS_WINDOW, end=now, tag=filters.tag or None)
        return [(h.up, h.degraded, h.down) for h in fleet], stats, tags_in_use()

    scope = hashlib.sha256(f"{filters.tag}\0{filters.critical}".encode()).hexdigest()[:24]
    key = f"web:dashboard:figures:{hours[0]:%Y%m%d%H}:{len(hours)}:{scope}"
    counts, stats, tags = cached(key, KEPT_SECONDS, compute, what="dashboard")
    return SlowFigures([Hour(*c) for c in counts], stats, tags)


def kept_hourly_series(service_ids: list[str], hours: list[datetime]) -> dict[str, HourlySeries]:
    """hourly_series of a page of services, as read within the last KEPT_SECONDS for the same
    services and hours."""

    def compute() -> dict[str, tuple]:
        series = hourly_series(service_ids, hours)
        return {sid: (h.good, h.total, h.response_times) for sid, h in series.items()}

    page = hashlib.sha256("\0".join(service_ids).encode()).hexdigest()[:24]
    key = f"web:dashboard:hours:{hours[0]:%Y%m%d%H}:{len(hours)}:{page}"
    kept = cached(key, KEPT_SECONDS, compute, what="dashboard")
    return {sid: HourlySeries(*values) for sid, values in kept.items()}


def tags_in_use() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT unnest(tags) AS tag FROM services_service ORDER BY 1")
        return [row[0] for row in cursor.fetchall()]


def status_counts(filters: Filters) -> dict[str, int]:
    rows = (
        Service.objects.filter(filters.scope()).order_by().values("status").annotate(n=Count("id"))
    )
    found = {row["status"]: row["n"] for row in rows}
    return {status: found.get(status, 0) for status in ServiceStatus.values}


SERVICES_PAGE_SQL = """
    SELECT s.id, s.name, s.status, s.critical, s.last_checked_at, s.last_response_time_ms
    FROM services_service s
    WHERE true {scope}
    ORDER BY array_position(%(order)s::varchar[], s.status), s.name, s.id
    LIMIT %(limit)s OFFSET %(offset)s
"""


def services_page(filters: Filters, page: int) -> list[ServiceRow]:
    """One page of the services in the filters' scope (and status): problems first
    (STATUS_ORDER), then by name."""
    scope, params = filters.scope_sql("s")
    if filters.status:
        scope += " AND s.status = %(status)s"
        params["status"] = filters.status
    params.update(
        order=[s.value for s in STATUS_ORDER], limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    with connection.cursor() as cursor:
        cursor.execute(SERVICES_PAGE_SQL.format(scope=scope), params)
        return [ServiceRow(*row) for row in cursor.fetchall()]


# The counts by severity are window aggregates over every active incident of the scope,
# computed before the limit.
ACTIVE_INCIDENTS_SQL = """
    SELECT i.id, i.title, i.severity, i.status, i.service_id, s.name, i.impact_started_at,
           i.detected_at, i.acknowledged_at, u.username, {counts}
    FROM incidents_incident i
    JOIN services_service s ON s.id = i.service_id
    LEFT JOIN accounts_user u ON u.id = i.acknowledged_by_id
    WHERE i.status = ANY(%(active)s::varchar[]) {scope}
    ORDER BY array_position(%(order)s::varchar[], i.severity), i.detected_at, i.id
    LIMIT %(limit)s
"""


def active_incidents(filters: Filters | None = None) -> tuple[list[IncidentRow], dict[str, int]]:
    """The TABLE_ROWS most severe active incidents (then the oldest: it has waited longest),
    and every active incident counted by severity (most severe first), in one query."""
    scope, params = (filters or Filters()).scope_sql("s")
    counts = ", ".join(
        f"count(*) FILTER (WHERE i.severity = %(severity_{n})s) OVER ()"
        for n in range(len(SEVERITY_ORDER))
    )
    params.update({f"severity_{n}": severity for n, severity in enumerate(SEVERITY_ORDER)})
    params.update(active=[s.value for s in ACTIVE_STATUSES], order=SEVERITY_ORDER, limit=TABLE_ROWS)
    with connection.cursor() as cursor:
        cursor.execute(ACTIVE_INCIDENTS_SQL.format(counts=counts, scope=scope), params)
        rows = cursor.fetchall()
    width = len(IncidentRow.__dataclass_fields__)
    totals = rows[0][width:] if rows else (0,) * len(SEVERITY_ORDER)
    return [IncidentRow(*row[:width]) for row in rows], dict(
        zip(SEVERITY_ORDER, totals, strict=True)
    )


SLOS_AT_RISK_SQL = """
    SELECT o.id, o.name, o.service_id, s.name, o.target, o."window", o.current_value,
           o.budget_remaining_percent, o.burn_rate, o.violation_risk, count(*) OVER ()
    FROM slos_slo o
    LEFT JOIN services_service s ON s.id = o.service_id
    WHERE o.enabled AND o.violation_risk = ANY(%(at_risk)s::varchar[]) {scope}
    ORDER BY array_position(%(order)s::varchar[], o.violation_risk),
             o.budget_remaining_percent ASC NULLS LAST, o.id
    LIMIT %(limit)s
"""


def slos_at_risk(filters: Filters | None = None) -> list[SloRow]:
    """The TABLE_ROWS enabled SLOs most at risk (medium or worse), then the least budget
    left, each with `total`: how many are at risk in all (a metric SLO about no service is
    left out by a tag or critical filter)."""
    scope, params = (filters or Filters()).scope_sql("s")
    params.update(at_risk=[r.value for r in AT_RISK], order=RISK_ORDER, limit=TABLE_ROWS)
    with connection.cursor() as cursor:
        cursor.execute(SLOS_AT_RISK_SQL.format(scope=scope), params)
        return [SloRow(*row) for row in cursor.fetchall()]
