"""Reads of the public status page: which services the public sees, their 90 days, and the
incidents of those services in public words only.

Nothing internal is ever read into these objects: a service contributes its name and status,
an incident its public wording (never its title, summary or notes), its status and its times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from incidents.choices import ACTIVE_STATUSES, IncidentSource, IncidentStatus
from incidents.models import Incident
from services.choices import ServiceStatus
from services.models import Service
from web.charts import DayUptime
from web.formatting import percent_label
from web.queries.rollups import daily_uptime, day_starts

RECENTLY_RESOLVED = timedelta(days=7)
# A service with this tag never appears on the public status page.
INTERNAL_TAG = "internal"

# What the public reads of an incident nobody has written public words for: facts the page
# already shows (the service's name), never the incident's own title, which is written for
# operators (an SLO alert's "burn rate 14.4 over 1 h on db-7", a runbook reference).
GENERIC_WORDING = {
    IncidentSource.CHECK: "{service} is unavailable",
    IncidentSource.SLO: "{service}: degraded service",
}
GENERIC_DEFAULT = "{service}: service disruption"


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
class PublicIncident:
    """An incident as the public reads it."""

    title: str
    service_name: str
    status: str
    status_label: str
    started_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class PublicStatus:
    now: datetime
    overall: Overall
    services: list[PublicServiceLine]
    active_incidents: list[PublicIncident]
    resolved_incidents: list[PublicIncident]


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


def public_wording(source: str, service_name: str) -> str:
    return GENERIC_WORDING.get(source, GENERIC_DEFAULT).format(service=service_name)


def public_status(*, now: datetime | None = None) -> PublicStatus:
    now = now or timezone.now()
    # Name and status only: nothing else of a service (URL, error, headers) is ever public.
    services = list(public_services().only("id", "name", "status").order_by("name", "id"))
    days = daily_uptime([s.id for s in services], day_starts(now))
    lines = [
        PublicServiceLine(s.name, s.status, s.get_status_display(), days[s.id]) for s in services
    ]
    resolved = _public_incidents().filter(
        status__in=(IncidentStatus.RESOLVED, IncidentStatus.CLOSED),
        resolved_at__gte=now - RECENTLY_RESOLVED,
    )
    return PublicStatus(
        now=now,
        overall=overall_status([s.status for s in services]),
        services=lines,
        active_incidents=[
            _public(i) for i in _public_incidents().filter(status__in=ACTIVE_STATUSES)
        ],
        resolved_incidents=[_public(i) for i in resolved.order_by("-resolved_at")],
    )


def _public_incidents() -> QuerySet[Incident]:
    """Incidents of public services, with only what a visitor may read: no title, summary or
    notes are even loaded."""
    return (
        Incident.objects.filter(service__in=public_services())
        .select_related("service")
        .only(
            "id",
            "source",
            "status",
            "impact_started_at",
            "resolved_at",
            "service__name",
        )
        .order_by("-impact_started_at")
    )


def _public(incident: Incident) -> PublicIncident:
    return PublicIncident(
        title=public_wording(incident.source, incident.service.name),
        service_name=incident.service.name,
        status=incident.status,
        status_label=incident.get_status_display(),
        started_at=incident.impact_started_at,
        resolved_at=incident.resolved_at,
    )
