"""Reads of the operator dashboard and the public status page.

Each page costs a fixed number of set-based queries whatever the number of services: one for
the services, one per time series read (every service's hours, or every service's days, in one
statement), one per incident list, one for the SLOs and the incident statistics' one statement.
The time series come from the hourly check rollup (24 rows per service per day), which the
native refresh keeps as fresh as the minute rollup and TimescaleDB aggregates in real time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from incidents.choices import ACTIVE_STATUSES, SEVERITY_RANK, IncidentStatus, Severity
from incidents.models import Incident
from incidents.queries import incident_stats, incidents_for_list
from noc.charts import DayUptime, percent_label
from services.choices import ServiceStatus
from services.models import Service
from services.queries import uptime_ratios
from slos.choices import ViolationRisk
from slos.models import SLO
from slos.queries import slo_summary

HOURS = 24
DAYS = 90
STATS_WINDOW = timedelta(days=30)
RECENTLY_RESOLVED = timedelta(days=7)
# Under half the budget left or burning at 3× or more (slos/budget.py's violation_risk).
AT_RISK = (ViolationRisk.MEDIUM, ViolationRisk.HIGH, ViolationRisk.CRITICAL)
# A service with this tag never appears on the public status page.
INTERNAL_TAG = "internal"
# Problems first, then what runs, then what does not run at all.
STATUS_ORDER = (
    ServiceStatus.DOWN,
    ServiceStatus.DEGRADED,
    ServiceStatus.UNKNOWN,
    ServiceStatus.MAINTENANCE,
    ServiceStatus.UP,
    ServiceStatus.PAUSED,
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
)


# --- time series ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hour:
    """Checks of one service (or of all) in one hour, from the hourly rollup."""

    up: int = 0
    degraded: int = 0
    down: int = 0
    rt_count: int = 0
    rt_sum: float = 0.0

    @property
    def rt_avg_ms(self) -> float | None:
        return self.rt_sum / self.rt_count if self.rt_count else None

    def __add__(self, other: Hour) -> Hour:
        return Hour(
            self.up + other.up,
            self.degraded + other.degraded,
            self.down + other.down,
            self.rt_count + other.rt_count,
            self.rt_sum + other.rt_sum,
        )


HOURLY_SQL = """
    SELECT service_id, bucket, n_up, n_degraded, n_down, rt_count, coalesce(rt_sum, 0)
    FROM services_checkrollup_hourly
    WHERE bucket >= %s AND bucket < %s
"""

# Days in UTC, the days the cells are labelled with. Maintenance is left out, as in uptime.
DAILY_SQL = """
    SELECT service_id, (bucket AT TIME ZONE 'UTC')::date AS day,
           sum(n_up + n_degraded), sum(n_up + n_degraded + n_down)
    FROM services_checkrollup_hourly
    WHERE bucket >= %s AND bucket < %s AND service_id = ANY(%s)
    GROUP BY 1, 2
"""


def hour_starts(now: datetime, hours: int = HOURS) -> list[datetime]:
    """The last `hours` UTC hours, oldest first; the current (partial) hour is the last."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=i) for i in reversed(range(hours))]


def hourly_by_service(start: datetime, end: datetime) -> dict[str, dict[datetime, Hour]]:
    """{service_id: {hour: Hour}} over [start, end), every service in one query."""
    series: dict[str, dict[datetime, Hour]] = {}
    with connection.cursor() as cursor:
        cursor.execute(HOURLY_SQL, [start, end])
        for service_id, bucket, *counts in cursor.fetchall():
            series.setdefault(service_id, {})[bucket] = Hour(*counts)
    return series


def day_starts(now: datetime, days: int = DAYS) -> list[date]:
    """The last `days` UTC days, oldest first; today is the last."""
    today = now.astimezone(UTC).date()
    return [today - timedelta(days=i) for i in reversed(range(days))]


def daily_uptime(service_ids: list[str], days: list[date]) -> dict[str, list[DayUptime]]:
    """{service_id: one DayUptime per day of `days`}, every service in one grouped query."""
    if not service_ids:
        return {}
    start = datetime.combine(days[0], datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    found: dict[tuple[str, date], tuple[int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(DAILY_SQL, [start, end, service_ids])
        for service_id, day, good, total in cursor.fetchall():
            found[(service_id, day)] = (good, total)
    return {
        sid: [DayUptime(day, *found.get((sid, day), (0, 0))) for day in days] for sid in service_ids
    }


# --- the operator dashboard -------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceLine:
    service: Service
    uptime_24h_percent: float | None
    response_times: list[float | None]  # average per hour of `OperatorDashboard.hours`


@dataclass(frozen=True)
class OperatorDashboard:
    now: datetime
    hours: list[datetime]
    status_counts: dict[str, int]  # every ServiceStatus value, zero included
    services: list[ServiceLine]
    checks_per_hour: list[Hour]  # all services together, one per hour
    active_incidents: list[Incident]
    incidents_by_severity: dict[str, int]  # every Severity value, most severe first
    slos_at_risk: list[SLO]
    stats: dict[str, Any]  # incident_stats over the last 30 days


def operator_dashboard(*, now: datetime | None = None) -> OperatorDashboard:
    now = now or timezone.now()
    services = _services_by_status()
    hours = hour_starts(now)
    series = hourly_by_service(hours[0], hours[-1] + timedelta(hours=1))
    incidents = active_incidents()
    return OperatorDashboard(
        now=now,
        hours=hours,
        status_counts=_status_counts(services),
        services=_service_lines(services, hours, series, uptime_ratios("24h", now=now)),
        checks_per_hour=_fleet_hours(hours, series, {s.id for s in services}),
        active_incidents=incidents,
        incidents_by_severity=_severity_counts(incidents),
        slos_at_risk=slos_at_risk(),
        stats=incident_stats(start=now - STATS_WINDOW, end=now),
    )


def _services_by_status() -> list[Service]:
    rank = {status: i for i, status in enumerate(STATUS_ORDER)}
    services = Service.objects.only(*SERVICE_FIELDS)
    return sorted(services, key=lambda s: (rank.get(s.status, len(rank)), s.name.lower(), s.id))


def _status_counts(services: list[Service]) -> dict[str, int]:
    counts = Counter(s.status for s in services)
    return {status: counts[status] for status in ServiceStatus.values}


def _service_lines(
    services: list[Service],
    hours: list[datetime],
    series: dict[str, dict[datetime, Hour]],
    ratios: dict[str, float],
) -> list[ServiceLine]:
    lines = []
    for service in services:
        by_hour = series.get(service.id, {})
        ratio = ratios.get(service.id)
        lines.append(
            ServiceLine(
                service=service,
                uptime_24h_percent=None if ratio is None else ratio * 100,
                response_times=[by_hour[h].rt_avg_ms if h in by_hour else None for h in hours],
            )
        )
    return lines


def _fleet_hours(
    hours: list[datetime], series: dict[str, dict[datetime, Hour]], known: set[str]
) -> list[Hour]:
    """Checks per hour of every existing service (rollup rows outlive a deleted service)."""
    totals = {hour: Hour() for hour in hours}
    for service_id, by_hour in series.items():
        if service_id in known:
            for hour, counts in by_hour.items():
                if hour in totals:
                    totals[hour] += counts
    return [totals[hour] for hour in hours]


def active_incidents() -> list[Incident]:
    """Active incidents, most severe first, then the oldest (it has waited longest)."""
    incidents = incidents_for_list().filter(status__in=ACTIVE_STATUSES)
    return sorted(incidents, key=lambda i: (-SEVERITY_RANK.get(i.severity, -1), i.detected_at))


def _severity_counts(incidents: list[Incident]) -> dict[str, int]:
    counts = Counter(i.severity for i in incidents)
    ordered = sorted(Severity.values, key=lambda s: -SEVERITY_RANK[s])
    return {severity: counts[severity] for severity in ordered}


def slos_at_risk() -> list[SLO]:
    """Enabled SLOs at medium risk or worse, most at risk first (slo_summary's order)."""
    return [slo for slo in slo_summary() if slo.enabled and slo.violation_risk in AT_RISK]


# --- the public status page -------------------------------------------------------------------


@dataclass(frozen=True)
class Overall:
    level: str  # operational, degraded, partial, major: a CSS class
    text: str


@dataclass(frozen=True)
class PublicServiceLine:
    name: str
    status: str
    status_label: str
    days: list[DayUptime]

    @property
    def uptime_percent(self) -> float | None:
        total = sum(d.total for d in self.days)
        return 100 * sum(d.good for d in self.days) / total if total else None

    @property
    def uptime_label(self) -> str | None:
        percent = self.uptime_percent
        return None if percent is None else percent_label(percent)


@dataclass(frozen=True)
class PublicStatus:
    now: datetime
    overall: Overall
    services: list[PublicServiceLine]
    active_incidents: list[Incident]
    resolved_incidents: list[Incident]


def public_services() -> QuerySet[Service]:
    """The services the public may see: enabled and not tagged `internal`."""
    return Service.objects.filter(enabled=True).exclude(tags__contains=[INTERNAL_TAG])


def overall_status(statuses: list[str]) -> Overall:
    """Major outage when more than half the services are down, partial when any is."""
    down = statuses.count(ServiceStatus.DOWN)
    if down and down * 2 > len(statuses):
        return Overall("major", "Major outage")
    if down:
        return Overall("partial", "Partial outage")
    if ServiceStatus.DEGRADED in statuses:
        return Overall("degraded", "Degraded performance")
    return Overall("operational", "All systems operational")


def public_status(*, now: datetime | None = None) -> PublicStatus:
    now = now or timezone.now()
    # Name and status only: nothing else of a service (URL, error, headers) is ever public.
    services = list(public_services().only("id", "name", "status").order_by("name", "id"))
    days = daily_uptime([s.id for s in services], day_starts(now))
    lines = [
        PublicServiceLine(s.name, s.status, s.get_status_display(), days[s.id]) for s in services
    ]
    return PublicStatus(
        now=now,
        overall=overall_status([s.status for s in services]),
        services=lines,
        active_incidents=list(_public_incidents().filter(status__in=ACTIVE_STATUSES)),
        resolved_incidents=list(
            _public_incidents()
            .filter(
                status__in=(IncidentStatus.RESOLVED, IncidentStatus.CLOSED),
                resolved_at__gte=now - RECENTLY_RESOLVED,
            )
            .order_by("-resolved_at")
        ),
    )


def _public_incidents() -> QuerySet[Incident]:
    """Incidents of public services, with only what a visitor reads (no summary, no notes)."""
    return (
        Incident.objects.filter(service__in=public_services())
        .select_related("service")
        .only(
            "id",
            "title",
            "status",
            "impact_started_at",
            "detected_at",
            "resolved_at",
            "service__name",
        )
        .order_by("-impact_started_at")
    )
