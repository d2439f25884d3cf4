"""Reads of the public status page and its feed: which services the public sees and how they
are grouped (the admin's StatusPage settings), their 90 days, announced maintenance, and the
incidents of those services in public words only.

Nothing internal is ever read into these objects: a service contributes its name and status
(and an opaque token for its row's link, never its id), an incident its public title (or
generic words; never its title, summary or notes), the updates operators wrote for the
public, its status and its times; a maintenance window its times and the public services it
covers (never its name or description).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from incidents.choices import ACTIVE_STATUSES, IncidentSource, IncidentStatus
from incidents.models import Incident, IncidentUpdate
from noc.formatting import percent_label
from services.choices import ServiceStatus
from services.models import MaintenanceWindow, Service
from web.charts import DayUptime
from web.choices import ServicesShown
from web.models import StatusGroup, StatusPage
from web.queries.maintenance import next_occurrence
from web.queries.rollups import daily_uptime, day_starts

RECENTLY_RESOLVED = timedelta(days=7)
# A service with this tag never appears on the public status page (unless an admin puts it
# in a group of a page that shows only its groups).
INTERNAL_TAG = "internal"
OTHER_SERVICES = "Other services"

# What the public reads of an incident nobody has given a public title: facts the page
# already shows (the service's name), never the incident's own title, which is written for
# operators (an SLO alert's names the SLO and its burn; a runbook reference).
GENERIC_WORDING = {
    IncidentSource.CHECK: "{service} is unavailable",
    IncidentSource.SLO: "{service}: degraded service",
}
GENERIC_DEFAULT = "{service}: service disruption"

RESPONSE_SQL = """
    SELECT service_id, sum(rt_sum) / nullif(sum(rt_count), 0)
    FROM services_checkrollup_hourly
    WHERE bucket >= %s AND service_id = ANY(%s)
    GROUP BY service_id
"""


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
    response_ms: float | None = None  # 24-hour average, when the page shows it
    link_token: str = ""  # service_link_token: the row's link to the service's page

    @property
    def uptime_percent(self) -> float | None:
        total = sum(d.total for d in self.days)
        return 100 * sum(d.good for d in self.days) / total if total else None

    @property
    def uptime_label(self) -> str | None:
        percent = self.uptime_percent
        return None if percent is None else percent_label(percent)


@dataclass(frozen=True)
class PublicGroup:
    name: str  # empty: the page has no groups
    services: list[PublicServiceLine]


@dataclass(frozen=True)
class PublicUpdate:
    phase: str
    phase_label: str
    message: str
    time: datetime


@dataclass(frozen=True)
class PublicIncident:
    """An incident as the public reads it."""

    id: int
    title: str
    service_name: str
    status: str
    status_label: str
    started_at: datetime
    resolved_at: datetime | None
    updates: list[PublicUpdate]  # newest first

    @property
    def updated_at(self) -> datetime:
        times = [self.started_at, *(u.time for u in self.updates)]
        if self.resolved_at:
            times.append(self.resolved_at)
        return max(times)


@dataclass(frozen=True)
class Announcement:
    """A maintenance window as the public reads it: when, and which public services."""

    id: int
    services: list[str]
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool


@dataclass(frozen=True)
class PublicStatus:
    now: datetime
    page: StatusPage
    overall: Overall
    groups: list[PublicGroup]
    active_incidents: list[PublicIncident]
    resolved_incidents: list[PublicIncident]
    maintenance: list[Announcement]

    @property
    def services(self) -> list[PublicServiceLine]:
        seen, lines = set(), []
        for group in self.groups:
            for line in group.services:
                if line.name not in seen:
                    seen.add(line.name)
                    lines.append(line)
        return lines

    @property
    def is_off(self) -> bool:
        return not self.page.enabled or not self.groups


def public_services(page: StatusPage | None = None) -> QuerySet[Service]:
    """The services the public may see: none while the page is off; else the enabled ones
    not tagged `internal` (or, when the page shows only its groups, in one of them)."""
    page = page or StatusPage.current()
    if not page.enabled:
        return Service.objects.none()
    services = Service.objects.filter(enabled=True)
    if page.services_shown == ServicesShown.GROUPS:
        groups = StatusGroup.services.through.objects.values("service_id")
        return services.filter(pk__in=groups)
    return services.exclude(tags__contains=[INTERNAL_TAG])


LINK_SALT = "web.status-page.service-link"


def service_link_token(service_id: str) -> str:
    """An opaque handle of a public service for its row's link (/status/services/<token>/):
    the page names a service, never its id, which operators chose for themselves (it may
    say more than the name: a host, a team, a customer) and which the page does not
    publish. Keyed with SECRET_KEY, so it cannot be worked back to the id."""
    return salted_hmac(LINK_SALT, service_id).hexdigest()[:32]


def public_service_for_token(token: str) -> str | None:
    """The id of the public service whose link token is `token`, if any (a service taken off
    the page no longer answers to its old token)."""
    for service_id in public_services().values_list("id", flat=True).iterator():
        if constant_time_compare(service_link_token(service_id), token):
            return service_id
    return None


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
    page = StatusPage.current()
    # Name and status only: nothing else of a service (URL, error, headers) is ever public.
    services = list(public_services(page).only("id", "name", "status").order_by("name", "id"))
    ids = [s.id for s in services]
    days = daily_uptime(ids, day_starts(now))
    response = response_times(ids, now) if page.show_response_times else {}
    lines = {
        s.id: PublicServiceLine(
            s.name,
            s.status,
            s.get_status_display(),
            days[s.id],
            response.get(s.id),
            service_link_token(s.id),
        )
        for s in services
    }
    active, resolved = public_incidents(ids, now)
    return PublicStatus(
        now=now,
        page=page,
        overall=overall_status([s.status for s in services]),
        groups=arrange(page, lines),
        active_incidents=active,
        resolved_incidents=resolved,
        maintenance=announcements(page, {s.id: s.name for s in services}, now),
    )


def response_times(service_ids: list[str], now: datetime) -> dict[str, float]:
    """Average response time over the last 24 hourly buckets, per service."""
    if not service_ids:
        return {}
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    with connection.cursor() as cursor:
        cursor.execute(RESPONSE_SQL, [since, service_ids])
        return {sid: avg for sid, avg in cursor.fetchall() if avg is not None}


def arrange(page: StatusPage, lines: dict[str, PublicServiceLine]) -> list[PublicGroup]:
    """The admin's groups in order, each with its public services by name; without groups one
    unnamed group of every public service; services in no group last, when the page shows
    more than its groups."""
    groups = list(StatusGroup.objects.prefetch_related(
        Prefetch("services", queryset=Service.objects.only("id").order_by("name", "id"))
    ))  # fmt: skip
    if not groups:
        return [PublicGroup("", list(lines.values()))] if lines else []
    arranged, grouped = [], set()
    for group in groups:
        members = [lines[s.id] for s in group.services.all() if s.id in lines]
        grouped |= {s.id for s in group.services.all()}
        if members:
            arranged.append(PublicGroup(group.name, members))
    rest = [line for sid, line in lines.items() if sid not in grouped]
    if rest and page.services_shown != ServicesShown.GROUPS:
        arranged.append(PublicGroup(OTHER_SERVICES, rest))
    return arranged


def public_incidents(
    service_ids: list[str], now: datetime
) -> tuple[list[PublicIncident], list[PublicIncident]]:
    """Active incidents of public services, and those resolved in the last 7 days; one query
    for the incidents (with only what a visitor may read) and one for their public updates."""
    recent = Q(status__in=ACTIVE_STATUSES) | Q(
        status__in=(IncidentStatus.RESOLVED, IncidentStatus.CLOSED),
        resolved_at__gte=now - RECENTLY_RESOLVED,
    )
    updates = IncidentUpdate.objects.only("incident_id", "phase", "message", "time")
    incidents = (
        Incident.objects.filter(recent, service_id__in=service_ids)
        .select_related("service")
        .only(
            "id", "source", "status", "public_title", "impact_started_at", "resolved_at",
            "service__name",
        )
        .prefetch_related(Prefetch("public_updates", queryset=updates.order_by("-time", "-id")))
        .order_by("-impact_started_at", "-id")
    )  # fmt: skip
    shown = [_public(i) for i in incidents]
    active = [i for i in shown if i.status in ACTIVE_STATUSES]
    resolved = sorted(
        (i for i in shown if i.status not in ACTIVE_STATUSES),
        key=lambda i: i.resolved_at,
        reverse=True,
    )
    return active, resolved


def _public(incident: Incident) -> PublicIncident:
    return PublicIncident(
        id=incident.pk,
        title=incident.public_title or public_wording(incident.source, incident.service.name),
        service_name=incident.service.name,
        status=incident.status,
        status_label=incident.get_status_display(),
        started_at=incident.impact_started_at,
        resolved_at=incident.resolved_at,
        updates=[
            PublicUpdate(u.phase, u.get_phase_display(), u.message, u.time)
            for u in incident.public_updates.all()
        ],
    )


def announcements(page: StatusPage, names: dict[str, str], now: datetime) -> list[Announcement]:
    """Maintenance windows of public services in progress, or starting within the page's
    announcement period; soonest first."""
    if not page.announce_maintenance_days or not names:
        return []
    horizon = now + timedelta(days=page.announce_maintenance_days)
    windows = (
        MaintenanceWindow.objects.filter(services__in=names.keys())
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .distinct()
        .prefetch_related(Prefetch("services", queryset=Service.objects.only("id")))
    )
    shown = []
    for window in windows:
        covered = sorted(names[s.id] for s in window.services.all() if s.id in names)
        if window.covers(now):
            start, end = _current(window, now)
            shown.append(Announcement(window.pk, covered, start, end, True))
            continue
        start, end = next_occurrence(window, now)
        if start is not None and start <= horizon:
            shown.append(Announcement(window.pk, covered, start, end, False))
    return sorted(shown, key=lambda a: (not a.active, a.starts_at or now))


def _current(window: MaintenanceWindow, now: datetime) -> tuple[datetime | None, datetime | None]:
    """Start and end of the occurrence covering `now`."""
    if not window.cron:
        return window.starts_at, window.ends_at
    from croniter import croniter

    start = croniter(window.cron, now + timedelta(seconds=1), second_at_beginning=True).get_prev(
        datetime
    )
    return start, start + timedelta(minutes=window.duration_minutes or 0)
