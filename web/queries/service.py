"""Reads of a service's page: its last checks, response times per bucket from the rollups'
histogram, uptime over four windows, and its incidents, SLOs and maintenance windows.

A fixed number of queries: the service, its last results (a backward scan of the primary
key), one series query, the 24-hour uptime (minute rollup), the longer uptimes (one pass over
the hourly rollup), incidents, SLOs, maintenance windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import CroniterError, croniter
from django.db import connection
from django.utils import timezone

from incidents.models import Incident
from services.choices import LATENCY_BUCKETS_MS, CheckKind
from services.models import CheckResult, MaintenanceWindow, Service
from services.queries import Uptime, histogram_quantile, recent_results, service_uptime
from slos.models import SLO

HEARTBEATS = 90
RECENT_INCIDENTS = 10


@dataclass(frozen=True)
class Range:
    """A response-time chart range: which rollup it reads and how wide its buckets are."""

    key: str
    label: str
    span: timedelta
    bucket: timedelta
    table: str
    time_format: str


RANGES = {
    r.key: r
    for r in (
        Range("1h", "1 h", timedelta(hours=1), timedelta(minutes=1), "services_checkrollup",
              "%H:%M"),
        Range("24h", "24 h", timedelta(hours=24), timedelta(minutes=15), "services_checkrollup",
              "%H:%M"),
        Range("7d", "7 d", timedelta(days=7), timedelta(hours=2), "services_checkrollup_hourly",
              "%m-%d %H:%M"),
        Range("30d", "30 d", timedelta(days=30), timedelta(hours=6),
              "services_checkrollup_hourly", "%m-%d"),
    )
}  # fmt: skip
DEFAULT_RANGE = "24h"

_LE = ", ".join(f"sum(le_{ms})" for ms in LATENCY_BUCKETS_MS)
SERIES_SQL = """
    SELECT date_bin(%(bucket)s, bucket, %(origin)s) AS b, sum(rt_count), min(rt_min),
           max(rt_max), {le}
    FROM {table}
    WHERE service_id = %(service)s AND bucket >= %(start)s AND bucket < %(end)s
    GROUP BY 1
"""

# 7, 30 and 90 days in one pass over the hourly rollup, from whole hours (at most 59 minutes
# more than the nominal window, as the SLO windows read it).
LONG_UPTIME_SQL = """
    SELECT {columns}
    FROM services_checkrollup_hourly
    WHERE service_id = %(service)s AND bucket >= %(d90)s
"""
LONG_WINDOWS = {"7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}


@dataclass(frozen=True)
class Bucket:
    start: datetime
    count: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True)
class ResponseSeries:
    range: Range
    start: datetime
    end: datetime
    buckets: list[Bucket]  # every bucket of the range, empty ones with count 0


@dataclass(frozen=True)
class WindowUptime:
    window: str
    good: int
    total: int

    @property
    def percent(self) -> float | None:
        return 100 * self.good / self.total if self.total else None


@dataclass(frozen=True)
class UpcomingWindow:
    window: MaintenanceWindow
    active: bool
    next_start: datetime | None
    next_end: datetime | None


@dataclass(frozen=True)
class ServicePage:
    now: datetime
    service: Service
    results: list[CheckResult]  # oldest first
    series: ResponseSeries
    uptime_24h: Uptime
    uptimes: list[WindowUptime]  # 24h, 7d, 30d, 90d
    cert_days_left: float | None
    incidents: list[Incident]
    slos: list[SLO]
    maintenance: list[UpcomingWindow]

    @property
    def last_result(self) -> CheckResult | None:
        return self.results[-1] if self.results else None


def service_page(service: Service, *, range_key: str, now: datetime | None = None) -> ServicePage:
    now = now or timezone.now()
    results = list(reversed(recent_results(service.id, limit=HEARTBEATS)))
    uptime_24h = service_uptime(service.id, "24h", now=now)
    return ServicePage(
        now=now,
        service=service,
        results=results,
        series=response_series(service.id, RANGES[range_key], now),
        uptime_24h=uptime_24h,
        uptimes=[
            WindowUptime("24h", uptime_24h.up + uptime_24h.degraded, uptime_24h.checks),
            *long_uptimes(service.id, now),
        ],
        cert_days_left=_cert_days(service, results),
        incidents=list(
            Incident.objects.filter(service=service)
            .only("id", "title", "status", "severity", "impact_started_at", "resolved_at")
            .order_by("-detected_at", "-id")[:RECENT_INCIDENTS]
        ),
        slos=list(SLO.objects.filter(service=service).order_by("id")),
        maintenance=_maintenance(service, now),
    )


def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return epoch + (moment - epoch) // step * step


def response_series(service_id: str, chart: Range, now: datetime) -> ResponseSeries:
    """p50 and p95 per bucket, estimated from the summed cumulative histograms (as
    services.queries.histogram_quantile does for a window)."""
    end = _floor(now, chart.bucket) + chart.bucket
    start = end - chart.span
    params = {
        "bucket": chart.bucket,
        "origin": datetime(2000, 1, 1, tzinfo=UTC),
        "service": service_id,
        "start": start,
        "end": end,
    }
    found: dict[datetime, Bucket] = {}
    with connection.cursor() as cursor:
        cursor.execute(SERIES_SQL.format(le=_LE, table=chart.table), params)
        for bucket, count, rt_min, rt_max, *le in cursor.fetchall():
            cumulative = list(zip(LATENCY_BUCKETS_MS, le, strict=True))
            found[bucket] = Bucket(
                bucket,
                count,
                histogram_quantile(0.5, count, cumulative, rt_min, rt_max),
                histogram_quantile(0.95, count, cumulative, rt_min, rt_max),
            )
    steps = int(chart.span / chart.bucket)
    starts = [start + chart.bucket * i for i in range(steps)]
    buckets = [found.get(s, Bucket(s, 0, None, None)) for s in starts]
    return ResponseSeries(range=chart, start=start, end=end, buckets=buckets)


def long_uptimes(service_id: str, now: datetime) -> list[WindowUptime]:
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    params: dict[str, object] = {"service": service_id}
    columns = []
    for key, span in LONG_WINDOWS.items():
        params[key] = hour - span
        condition = f"FILTER (WHERE bucket >= %({key})s)"
        columns += [
            f"coalesce(sum(n_up + n_degraded) {condition}, 0)",
            f"coalesce(sum(n_up + n_degraded + n_down) {condition}, 0)",
        ]
    params["d90"] = params["90d"]
    with connection.cursor() as cursor:
        cursor.execute(LONG_UPTIME_SQL.format(columns=", ".join(columns)), params)
        row = cursor.fetchone()
    return [WindowUptime(key, row[2 * i], row[2 * i + 1]) for i, key in enumerate(LONG_WINDOWS)]


def _cert_days(service: Service, results: list[CheckResult]) -> float | None:
    if service.kind not in (CheckKind.HTTP, CheckKind.TLS):
        return None
    for result in reversed(results):
        days = (result.details or {}).get("cert_days_left")
        if isinstance(days, int | float):
            return float(days)
    return None


def _maintenance(service: Service, now: datetime) -> list[UpcomingWindow]:
    """The service's maintenance windows with whether each covers now and when it next
    starts; windows that are over are left out."""
    shown = []
    for window in service.maintenance_windows.order_by("starts_at", "name"):
        start, end = next_occurrence(window, now)
        active = window.covers(now)
        if active or start is not None:
            shown.append(UpcomingWindow(window, active, start, end))
    return shown


def next_occurrence(
    window: MaintenanceWindow, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """When the window next starts after `now` and when that occurrence ends."""
    if not window.cron:
        if window.starts_at is not None and window.starts_at > now:
            return window.starts_at, window.ends_at
        return None, None
    try:
        start = croniter(window.cron, max(now, window.starts_at or now), second_at_beginning=True)
        moment = start.get_next(datetime)
    except (CroniterError, ValueError):
        return None, None
    if window.ends_at is not None and moment >= window.ends_at:
        return None, None
    return moment, moment + timedelta(minutes=window.duration_minutes or 0)
