"""Reads of the operator dashboard: counts, one page of services with their last 24 hours,
checks per hour, active incidents, SLOs at risk and incident statistics.

The dashboard costs a fixed number of set-based queries whatever the number of services: the
status counts are one grouped query, the services table shows one page (problems first) and
only that page's hourly series is read, the fleet's checks per hour are aggregated in SQL.
Filters (tag, critical) scope everything on the page; the status filter narrows the table.

The fleet's checks per hour (a join of every service's hourly rows, the page's costliest
query) are kept in the cache for FLEET_HOURS_CACHE_SECONDS per scope and hour: that chart may
be up to a minute behind the rollups; everything else is read on every request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When, Window
from django.utils import timezone

from incidents.choices import ACTIVE_STATUSES, SEVERITY_RANK, Severity
from incidents.models import Incident
from incidents.queries import incident_stats
from services.choices import ServiceStatus
from services.models import Service
from slos.choices import ViolationRisk
from slos.models import SLO
from slos.queries import slos_for_list
from web.queries.rollups import Hour, HourlySeries, fleet_hours, hour_starts, hourly_series

PAGE_SIZE = 100
# The rollups behind the fleet's chart are refreshed every 15 s; its bars are hourly totals.
FLEET_HOURS_CACHE_SECONDS = 60
# Rows of the incident and SLO tables (the counts above them cover all): each row costs
# about 0.3 ms of CPU to load and render, and 100 active incidents were a third of a page.
TABLE_ROWS = 25
SEVERITY_ORDER = Case(
    *(When(severity=s, then=Value(rank)) for s, rank in SEVERITY_RANK.items()),
    default=Value(-1),
    output_field=IntegerField(),
)
STATS_WINDOW = timedelta(days=30)
# Under half the budget left or burning at 3× or more (slos/budget.py's violation_risk).
AT_RISK = (ViolationRisk.MEDIUM, ViolationRisk.HIGH, ViolationRisk.CRITICAL)
# What the incident and SLO tables print: a service row also holds headers, bodies and secrets.
INCIDENT_FIELDS = (
    "id", "title", "severity", "status", "service_id", "service__name", "impact_started_at",
    "detected_at", "acknowledged_at", "acknowledged_by__username",
)  # fmt: skip
SLO_FIELDS = (
    "id", "name", "service_id", "service__name", "target", "window", "current_value",
    "budget_remaining_percent", "burn_rate", "violation_risk",
)  # fmt: skip
# Problems first, then what runs, then what does not run at all.
STATUS_ORDER = (
    ServiceStatus.DOWN,
    ServiceStatus.DEGRADED,
    ServiceStatus.UNKNOWN,
    ServiceStatus.MAINTENANCE,
    ServiceStatus.UP,
    ServiceStatus.PAUSED,
)
STATUS_RANK = Case(
    *(When(status=status, then=Value(i)) for i, status in enumerate(STATUS_ORDER)),
    default=Value(len(STATUS_ORDER)),
    output_field=IntegerField(),
)
# Only what the dashboard shows: a service row also holds headers, bodies and secrets in URLs.
SERVICE_FIELDS = (
    "id",
    "name",
    "status",
    "enabled",
    "critical",
    "kind",
    "tags",
    "last_checked_at",
    "last_response_time_ms",
    "last_error",
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


@dataclass(frozen=True)
class ServiceLine:
    service: Service
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
    active_incidents: list[Incident]  # the TABLE_ROWS most severe
    active_incidents_total: int
    incidents_by_severity: dict[str, int]  # every Severity value, most severe first
    slos_at_risk: list[SLO]  # the TABLE_ROWS most at risk
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
    series = hourly_series([s.id for s in services], hours)
    incidents, by_severity = active_incidents(filters)
    at_risk = slos_at_risk(filters)
    return OperatorDashboard(
        now=now,
        filters=filters,
        tags=tags_in_use(),
        hours=hours,
        status_counts=counts,
        services=[ServiceLine(s, series[s.id]) for s in services],
        services_matching=matching,
        page_size=PAGE_SIZE,
        checks_per_hour=cached_fleet_hours(hours, filters),
        active_incidents=incidents,
        active_incidents_total=sum(by_severity.values()),
        incidents_by_severity=by_severity,
        slos_at_risk=at_risk,
        slos_at_risk_total=at_risk[0].total if at_risk else 0,
        stats=incident_stats(start=now - STATS_WINDOW, end=now, tag=filters.tag or None),
    )


def cached_fleet_hours(hours: list[datetime], filters: Filters) -> list[Hour]:
    """fleet_hours of the filters' scope, from the cache when computed in the last
    FLEET_HOURS_CACHE_SECONDS for the same hours (the key names the first: on the hour the
    window moves on at once)."""
    scope = hashlib.sha256(f"{filters.tag}\0{filters.critical}".encode()).hexdigest()[:24]
    key = f"web:dashboard:fleet-hours:{hours[0]:%Y%m%d%H}:{len(hours)}:{scope}"
    counts = cache.get(key)
    if counts is None or len(counts) != len(hours):
        totals = fleet_hours(hours, tag=filters.tag, critical=filters.critical)
        counts = [(h.up, h.degraded, h.down) for h in totals]
        cache.set(key, counts, FLEET_HOURS_CACHE_SECONDS)
    return [Hour(*c) for c in counts]


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


def services_page(filters: Filters, page: int) -> list[Service]:
    services = Service.objects.filter(filters.scope())
    if filters.status:
        services = services.filter(status=filters.status)
    start = (page - 1) * PAGE_SIZE
    return list(
        services.only(*SERVICE_FIELDS)
        .annotate(rank=STATUS_RANK)
        .order_by("rank", "name", "id")[start : start + PAGE_SIZE]
    )


def _incident_scope(filters: Filters) -> Q:
    q = Q()
    if filters.tag:
        q &= Q(service__tags__contains=[filters.tag])
    if filters.critical is not None:
        q &= Q(service__critical=filters.critical)
    return q


def active_incidents(filters: Filters | None = None) -> tuple[list[Incident], dict[str, int]]:
    """The TABLE_ROWS most severe active incidents (then the oldest: it has waited longest),
    and every active incident counted by severity (most severe first), in one query: the
    counts are window aggregates over all of them, computed before the limit."""
    found = Incident.objects.filter(status__in=ACTIVE_STATUSES)
    if filters is not None:
        found = found.filter(_incident_scope(filters))
    counts = {
        f"n_{severity}": Window(Count("id", filter=Q(severity=severity)))
        for severity in Severity.values
    }
    rows = list(
        found.select_related("service", "acknowledged_by")
        .only(*INCIDENT_FIELDS)
        .annotate(rank=SEVERITY_ORDER, **counts)
        .order_by("-rank", "detected_at", "id")[:TABLE_ROWS]
    )
    ordered = sorted(Severity.values, key=lambda s: -SEVERITY_RANK[s])
    return rows, {s: getattr(rows[0], f"n_{s}") if rows else 0 for s in ordered}


def slos_at_risk(filters: Filters | None = None) -> list[SLO]:
    """The TABLE_ROWS enabled SLOs most at risk (medium or worse), then the least budget
    left, each with `total`: how many are at risk in all."""
    slos: QuerySet[SLO] = slos_for_list().filter(enabled=True, violation_risk__in=AT_RISK)
    if filters is not None:
        slos = slos.filter(_incident_scope(filters))
    return list(
        slos.only(*SLO_FIELDS)
        .annotate(total=Window(Count("id")))
        .order_by(F("risk").desc(), F("budget_remaining_percent").asc(nulls_last=True), "id")[
            :TABLE_ROWS
        ]
    )
