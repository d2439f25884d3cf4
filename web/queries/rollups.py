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
    """Checks of the fleet (or a scope of it) in one hour, from the hourly rollup."""

    up: int = 0
    degraded: int = 0
    down: int = 0


# One row per service: its checks up or degraded and all counted (maintenance left out) over
# the hours, and each hour's average response time with the hour's index from the first. A
# lateral subquery per service, so each is one range of the (service_id, bucket) index: joined
# as a set, the planner read every service's hours through the bucket index instead (46,000
# rows for 2,400 at 2,000 services, three times the time).
HOURLY_SERIES_SQL = """
    SELECT page.id, h.good, h.total, h.positions, h.averages
    FROM unnest(%(ids)s::varchar[]) AS page(id)
    CROSS JOIN LATERAL (
        SELECT sum(r.n_up + r.n_degraded) AS good,
               sum(r.n_up + r.n_degraded + r.n_down) AS total,
               array_agg(floor(extract(epoch FROM r.bucket - %(start)s) / 3600)::integer
                         ORDER BY r.bucket) AS positions,
               array_agg(coalesce(r.rt_sum, 0) / nullif(r.rt_count, 0) ORDER BY r.bucket)
                   AS averages
        FROM services_checkrollup_hourly r
        WHERE r.service_id = page.id AND r.bucket >= %(start)s AND r.bucket < %(end)s
    ) AS h
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


@dataclass(frozen=True)
class HourlySeries:
    """One service over the last hours: checks up or degraded (`good`) of all counted
    (`total`, maintenance left out), and the average response time of each hour (None: no
    response time that hour)."""

    good: int = 0
    total: int = 0
    response_times: tuple[float | None, ...] = ()

    @property
    def uptime_percent(self) -> float | None:
        return 100 * self.good / self.total if self.total else None


def hourly_series(service_ids: list[str], hours: list[datetime]) -> dict[str, HourlySeries]:
    """{service_id: HourlySeries over `hours`} for every given service (empty without rows),
    in one query."""
    empty = HourlySeries(response_times=(None,) * len(hours))
    series = dict.fromkeys(service_ids, empty)
    if not service_ids:
        return series
    params = {"ids": service_ids, "start": hours[0], "end": hours[-1] + timedelta(hours=1)}
    with connection.cursor() as cursor:
        cursor.execute(HOURLY_SERIES_SQL, params)
        for service_id, good, total, positions, averages in cursor.fetchall():
            if positions is None:
                continue  # no rows in these hours
            times: list[float | None] = [None] * len(hours)
            for i, average in zip(positions, averages, strict=True):
                times[i] = average
            series[service_id] = HourlySeries(good, total, tuple(times))
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
