"""The dashboard's long tables (services, active incidents, SLOs at risk) as rows of HTML built
in Python.

Through the template engine each cell was a variable lookup, a filter call and an escape: the
services table alone was about a third of the page's CPU. Here each row is one f-string of
escaped values, with the markup the templates had; the templates keep the tables' frame.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince

from incidents.choices import IncidentStatus, Severity
from noc import formatting
from services.choices import ServiceStatus
from slos.choices import ViolationRisk
from web import charts
from web.queries.dashboard import IncidentRow, ServiceLine, SloRow
from web.templatetags.console import path_format

# A page of services draws 100 sparklines; a service's hourly series changes when the rollups
# are refreshed (every 15 s), so most requests draw the same ones again.
SPARKLINES_KEPT = 4096

# What get_<field>_display() gives, without flattening the choices on every call.
STATUS_LABELS = dict(ServiceStatus.choices)
SEVERITY_LABELS = dict(Severity.choices)
INCIDENT_STATUS_LABELS = dict(IncidentStatus.choices)
RISK_LABELS = dict(ViolationRisk.choices)


def escape(value: Any) -> str:
    """django.utils.html.escape without its lazy-string wrapper (a third of its cost here)."""
    return html.escape(str(value))


@functools.lru_cache(maxsize=SPARKLINES_KEPT)
def sparkline(values: tuple[float | None, ...], label: str) -> SafeString:
    """charts.sparkline (a pure function), drawn once per series and label."""
    return charts.sparkline(values, label=label)


@dataclass(frozen=True)
class Clock:
    """`now` and the current time zone and language, read once for a table: each read is a
    context-variable lookup, and a page prints some 300 times."""

    now: datetime
    zone: tzinfo
    language: str | None

    @classmethod
    def current(cls, now: datetime) -> Clock:
        return cls(now, timezone.get_current_timezone(), translation.get_language())

    def moment(self, value: datetime | None) -> str:
        """A time as the `date:'Y-m-d H:i:s T'` filter prints it."""
        if value is None:
            return ""
        local = value.astimezone(self.zone)
        return f"{local.isoformat(' ', 'seconds')[:19]} {local.tzname()}"

    def ago(self, value: datetime | None) -> str:
        """What `{{ value|timesince:now }}` prints ('' without a time). Under four weeks that
        depends only on the whole minutes between them (no months to count on a calendar),
        and a page prints the same few dozen a hundred times: each is worked out once."""
        if not value:
            return ""
        delta = self.now - value
        if delta >= CALENDAR_FREE:
            return timesince(value, self.now)
        since = delta.days * 86400 + delta.seconds
        minutes = int(delta.total_seconds() // 60) if since > 0 else 0
        return _minutes_since(minutes, self.language)


# timesince counts months from the calendar beyond this; below it, weeks, days, hours, minutes.
CALENDAR_FREE = timedelta(days=28)
_ORIGIN = datetime(2001, 2, 1, tzinfo=UTC)  # four weeks after it is still February


@functools.lru_cache(maxsize=4096)
def _minutes_since(minutes: int, language: str | None) -> str:
    return timesince(_ORIGIN, _ORIGIN + timedelta(minutes=minutes))


def whole_ms(value: float) -> str:
    """`floatformat:0`: rounded half up."""
    return str(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def link(route: str) -> Callable[[Any], str]:
    """The `path` filter of one route, its URL format read once for a table: the URL of an
    id, escaped for an attribute."""
    url = path_format(route)
    return lambda value: escape(url.format(quote(str(value), safe="")))


def _rows(rows: Iterable[str]) -> SafeString:
    return mark_safe("".join(rows))  # every value in them went through escape()


# --- services ---------------------------------------------------------------------------------


def service_rows(lines: Iterable[ServiceLine], *, now: datetime) -> SafeString:
    """One <tr> per service line: name and link, status, last check, response time,
    24 h uptime and the response-time sparkline."""
    clock, service_url = Clock.current(now), link("web:service")
    return _rows(_service_row(line, clock, service_url) for line in lines)


def _service_row(line: ServiceLine, clock: Clock, service_url: Callable[[Any], str]) -> str:
    s = line.service
    name = escape(s.name)
    critical = ' <span class="badge">critical</span>' if s.critical else ""
    status = escape(s.status)
    if s.last_checked_at:
        checked = (
            f'<span title="{clock.moment(s.last_checked_at)}">'
            f"{escape(clock.ago(s.last_checked_at))} ago</span>"
        )
    else:
        checked = '<span class="muted">never</span>'
    response = (
        f"{whole_ms(s.last_response_time_ms)} ms" if s.last_response_time_ms is not None else "—"
    )
    chart = sparkline(line.response_times, f"{s.name}: average response time per hour, last 24 h")
    # Rounded down, as the status page's cells are: 99.899 never reads 99.90.
    uptime = escape(formatting.optional_percent(line.uptime_24h_percent))
    return (
        f'\n  <tr data-service="{escape(s.id)}">\n'
        f'    <td><a href="{service_url(s.id)}">{name}</a>{critical}</td>\n'
        f'    <td><span class="badge badge-{status}">'
        f"{escape(STATUS_LABELS.get(s.status, s.status))}</span></td>\n"
        f'    <td class="hide-narrow">{checked}</td>\n'
        f'    <td class="num">{response}</td>\n'
        f'    <td class="num" title="Checks up or degraded over the last 24 hourly buckets">'
        f"{uptime}</td>\n"
        f'    <td class="hide-narrow">{chart}</td>\n'
        f"  </tr>\n  "
    )


# --- active incidents -------------------------------------------------------------------------


def incident_rows(incidents: Iterable[IncidentRow], *, now: datetime) -> SafeString:
    """One <tr> per active incident: severity, service, title, status, start and
    acknowledgement."""
    clock, urls = Clock.current(now), (link("web:service"), link("web:incident"))
    return _rows(_incident_row(incident, clock, *urls) for incident in incidents)


def _incident_row(
    incident: IncidentRow,
    clock: Clock,
    service_url: Callable[[Any], str],
    incident_url: Callable[[Any], str],
) -> str:
    severity, status = escape(incident.severity), escape(incident.status)
    if incident.acknowledged_at:
        by = incident.acknowledged_by
        acknowledged = f"yes, by {escape(by)}" if by else "yes"
    else:
        acknowledged = "<strong>no</strong>"
    started = (
        f"Impact started {clock.moment(incident.impact_started_at)}, "
        f"detected {clock.moment(incident.detected_at)}"
    )
    return (
        f'\n  <tr data-incident="{incident.pk}">\n'
        f'    <td><span class="badge badge-{severity}">'
        f"{escape(SEVERITY_LABELS.get(incident.severity, incident.severity))}</span></td>\n"
        f'    <td><a href="{service_url(incident.service_id)}">'
        f"{escape(incident.service_name)}</a></td>\n"
        f'    <td><a href="{incident_url(incident.pk)}">'
        f"{escape(incident.title)}</a></td>\n"
        f'    <td><span class="badge badge-{status}">'
        f"{escape(INCIDENT_STATUS_LABELS.get(incident.status, incident.status))}</span></td>\n"
        f'    <td title="{started}">{escape(clock.ago(incident.impact_started_at))} ago</td>\n'
        f"    <td>{acknowledged}</td>\n"
        f"  </tr>\n  "
    )


# --- SLOs at risk -----------------------------------------------------------------------------


def slo_rows(slos: Iterable[SloRow]) -> SafeString:
    """One <tr> per SLO at risk: name and objective, service, SLI, budget left (a bar), burn
    rate and risk."""
    urls = link("web:service"), link("web:slo")
    return _rows(_slo_row(slo, *urls) for slo in slos)


def _slo_row(slo: SloRow, service_url: Callable[[Any], str], slo_url: Callable[[Any], str]) -> str:
    if slo.service_id:
        service = f'<a href="{service_url(slo.service_id)}">{escape(slo.service_name)}</a>'
    else:
        service = '<span class="muted">metrics</span>'
    risk = escape(slo.violation_risk)
    return (
        f'\n  <tr data-slo="{escape(slo.id)}">\n'
        f'    <td><a href="{slo_url(slo.id)}">{escape(slo.name)}</a> '
        f'<span class="muted">{escape(slo.target.normalize())} % / {escape(slo.window)}</span>'
        f"</td>\n"
        f"    <td>{service}</td>\n"
        f'    <td class="num">{escape(formatting.sli_label(slo.current_value))}</td>\n'
        f"    <td>{charts.budget_bar(slo.budget_remaining_percent)} "
        f'<span class="muted">'
        f"{escape(formatting.budget_percent_label(slo.budget_remaining_percent))}</span></td>\n"
        f'    <td class="num">{escape(formatting.burn_label(slo.burn_rate))}</td>\n'
        f'    <td><span class="badge badge-{risk}">'
        f"{escape(RISK_LABELS.get(slo.violation_risk, slo.violation_risk))}</span></td>\n"
        f"  </tr>\n  "
    )
