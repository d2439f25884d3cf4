"""Reads of the check rollups that several pages share: hourly series of many services, daily
uptime cells, and fleet totals per hour.

The series come from the hourly check rollup (24 rows per service per day), which the native
refresh keeps as fresh as the minute rollup and TimescaleDB aggregates in real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection

from web.charts import DayUptime

HOURS = 24
DAYS = 90


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
    WHERE bucket >= %s AND bucket < %s AND service_id = ANY(%s)
"""

# Every existing service's checks per hour within a scope (tag, critical): rollup rows outlive
# a deleted service, the join leaves them out.
FLEET_HOURS_SQL = """
    SELECT r.bucket, sum(r.n_up), sum(r.n_degraded), sum(r.n_down)
    FROM services_checkrollup_hourly r
    JOIN services_service s ON s.id = r.service_id
    WHERE r.bucket >= %(start)s AND r.bucket < %(end)s {scope}
    GROUP BY r.bucket
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


def hourly_by_service(
    service_ids: list[str], start: datetime, end: datetime
) -> dict[str, dict[datetime, Hour]]:
    """{service_id: {hour: Hour}} over [start, end) for the given services, in one query."""
    series: dict[str, dict[datetime, Hour]] = {}
    if not service_ids:
        return series
    with connection.cursor() as cursor:
        cursor.execute(HOURLY_SQL, [start, end, service_ids])
        for service_id, bucket, *counts in cursor.fetchall():
            series.setdefault(service_id, {})[bucket] = Hour(*counts)
    return series


def fleet_hours(
    hours: list[datetime], *, tag: str = "", critical: bool | None = None
) -> list[Hour]:
    """Checks per hour of every existing service in the scope, one Hour per hour of `hours`."""
    scope, params = "", {"start": hours[0], "end": hours[-1] + timedelta(hours=1)}
    if tag:
        scope += " AND s.tags @> ARRAY[%(tag)s]::varchar[]"
        params["tag"] = tag
    if critical is not None:
        scope += " AND s.critical = %(critical)s"
        params["critical"] = critical
    totals: dict[datetime, Hour] = {}
    with connection.cursor() as cursor:
        cursor.execute(FLEET_HOURS_SQL.format(scope=scope), params)
        for bucket, up, degraded, down in cursor.fetchall():
            totals[bucket] = Hour(up, degraded, down)
    return [totals.get(hour, Hour()) for hour in hours]


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
    # Days without a row are empty DayUptimes, shared: a status page of thousands of services
    # builds 90 of them each, and most of its services have a row for every day.
    empty = [DayUptime(day) for day in days]
    position = {day: i for i, day in enumerate(days)}
    lines = {sid: list(empty) for sid in service_ids}
    with connection.cursor() as cursor:
        cursor.execute(DAILY_SQL, [start, end, service_ids])
        for service_id, day, good, total in cursor.fetchall():
            lines[service_id][position[day]] = DayUptime(day, good, total)
    return lines
