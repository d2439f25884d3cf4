"""The daily check rollup (services_checkrollup_daily), built from the hourly one on plain
PostgreSQL: each day the sum of its hours, computed once when settled, a late write recomputing
it, a long history caught up two days per refresh, and nothing that lists the time-series tables
failing where the table does not exist (test_coarse_rollups.py)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from noc.models import RollupWatermark
from noc.timeseries import partitions
from noc.timeseries.rollups import ROLLUPS, Rollup, is_native, mark_dirty, refresh
from services import actions
from services.choices import LATENCY_BUCKETS_MS
from services.tests.rollup_rows import COLUMNS, COUNTS, LES, MINUTE, rows
from services.timeseries import (
    CHECK_ROLLUP_DAILY,
    CHECK_ROLLUP_HOURLY,
    ROLLUP_DAILY_TABLE,
    ROLLUP_HOURLY_TABLE,
    ROLLUP_TABLE,
)

pytestmark = pytest.mark.django_db

DAILY, HOURLY = CHECK_ROLLUP_DAILY.name, CHECK_ROLLUP_HOURLY.name
STEP = CHECK_ROLLUP_DAILY.catch_up.days  # days one refresh computes at most
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

# Pseudo-random but repeatable rows: x is a hash of the service and the time.
_HOUR_LES = ", ".join(f"x %% {5 + i}" for i in range(len(LATENCY_BUCKETS_MS)))
HOURS = f"""
INSERT INTO services_checkrollup_hourly (bucket, service_id, n_up, n_degraded, n_down,
    n_maintenance, rt_count, rt_sum, rt_min, rt_max, {LES}, m_total, m_good_avail)
SELECT h, s, x %% 50 + 10, x %% 3, x %% 4, x %% 2, x %% 50 + 5, (x %% 50 + 5) * 40.5,
       x %% 90 + 1, x %% 900 + 100, {_HOUR_LES}, x %% 60 + 1, x %% 30
FROM unnest(%(services)s::varchar[]) AS s,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 hour',
                     interval '1 hour') AS h,
     LATERAL (SELECT abs(hashtext(s || h::text)) AS x) AS y
"""
_MINUTE_LES = ", ".join(f"(x %% 4 > 0 AND x %% 600 <= {ms})::int" for ms in LATENCY_BUCKETS_MS)
MINUTES = f"""
INSERT INTO services_checkrollup (bucket, service_id, n_up, n_degraded, n_down, n_maintenance,
    rt_count, rt_sum, rt_min, rt_max, {LES})
SELECT m, s, (x %% 4 > 0)::int, (x %% 7 = 0)::int, (x %% 4 = 0)::int, 0, (x %% 4 > 0)::int,
       x %% 600, x %% 600, x %% 600, {_MINUTE_LES}
FROM unnest(%(services)s::varchar[]) AS s,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 minute',
                     interval '1 minute') AS m,
     LATERAL (SELECT abs(hashtext(s || m::text)) AS x) AS y
WHERE x %% 100 > 0
"""


@pytest.fixture(autouse=True)
def _native():
    if not is_native(CHECK_ROLLUP_DAILY):
        pytest.skip("the daily rollup exists on the native backend only")


def days_of(source_rows: list[dict], *, minutes: bool = False) -> dict[tuple, dict]:
    """The daily rows expected from hourly rows (or from minute rows: then m_total and
    m_good_avail count the minutes with data, and without a failure), summed here in Python."""
    days: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
    for row in source_rows:
        day = days[(row["bucket"].replace(hour=0, minute=0), row["service_id"])]
        for column in (*COUNTS, "rt_sum"):
            day[column] += row[column]
        for column, pick in (("rt_min", min), ("rt_max", max)):
            day[column] = pick(day.get(column, row[column]), row[column])
        if minutes:
            with_data = row["n_up"] + row["n_degraded"] + row["n_down"] > 0
            day["m_total"] += with_data
            day["m_good_avail"] += with_data and row["n_down"] == 0
        else:
            day["m_total"] += row["m_total"]
            day["m_good_avail"] += row["m_good_avail"]
    return {key: dict(value) for key, value in days.items()}


def daily() -> dict[tuple, dict]:
    return {(row["bucket"], row["service_id"]): {c: row[c] for c in COLUMNS} for row in rows(DAILY)}


def watermark() -> tuple[datetime, datetime | None]:
    mark = RollupWatermark.objects.get(name=DAILY)
    return mark.upto, mark.dirty_since


def test_the_contract_the_slo_reader_relies_on():
    assert (DAILY, CHECK_ROLLUP_DAILY.source) == ("services_checkrollup_daily", HOURLY)
    assert CHECK_ROLLUP_DAILY.bucket == timedelta(days=1)
    assert (CHECK_ROLLUP_DAILY.settle, CHECK_ROLLUP_DAILY.overlap) == (timedelta(hours=2),
                                                                       timedelta(0))  # fmt: skip
    assert CHECK_ROLLUP_DAILY.catch_up == timedelta(days=2) and 20 // STEP > 2
    assert ROLLUP_DAILY_TABLE.retention == ROLLUP_HOURLY_TABLE.retention
    with connection.cursor() as cursor:
        columns = {
            table: [c.name for c in connection.introspection.get_table_description(cursor, table)]
            for table in (HOURLY, DAILY)
        }
        cursor.execute(
            "SELECT array_agg(a.attname ORDER BY array_position(i.indkey::smallint[], a.attnum)) "
            "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
            [DAILY],
        )
        assert cursor.fetchone()[0] == ["service_id", "bucket"]
    assert columns[DAILY] == columns[HOURLY]


def test_a_first_refresh_over_weeks_of_hours_catches_up_a_few_days_at_a_time():
    start, services = TODAY - timedelta(days=30), ["a", "b", "c"]
    end = start + timedelta(days=20)
    partitions.ensure(ROLLUP_HOURLY_TABLE, start, end)
    with connection.cursor() as cursor:
        cursor.execute(HOURS, {"services": services, "start": start, "end": end})
        cursor.execute(f"SELECT min(bucket) FROM {HOURLY}")
        assert cursor.fetchone()[0] == start  # the refresh starts from the oldest hourly row
    now = end + timedelta(hours=3)

    steps = []
    while written := refresh(CHECK_ROLLUP_DAILY, now=now):
        steps.append((written, watermark()))

    assert steps == [
        (min(STEP, 20 - k) * 3, (start + timedelta(days=min(k + STEP, 20)), None))
        for k in range(0, 20, STEP)
    ]
    assert len(steps) > 1
    assert daily() == days_of(rows(HOURLY))
    assert len(daily()) == 20 * 3


def test_a_late_rewrite_older_than_the_watermark_is_recomputed_in_bounded_steps():
    start, services = TODAY - timedelta(days=30), ["a", "b"]
    end = start + timedelta(days=20)
    partitions.ensure(ROLLUP_HOURLY_TABLE, start, end)
    with connection.cursor() as cursor:
        cursor.execute(HOURS, {"services": services, "start": start, "end": end})
    now = end + timedelta(hours=3)
    while refresh(CHECK_ROLLUP_DAILY, now=now):
        pass
    # Late results rewrite hours of days 2 and 15: the hourly refresh marks the daily rollup
    # dirty from the older one, 18 days before its watermark.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {HOURLY} SET n_down = n_down + 7, m_good_avail = 0 "
            "WHERE service_id = 'a' AND bucket IN (%s, %s)",
            [start + timedelta(days=2, hours=5), start + timedelta(days=15, hours=23)],
        )
    mark_dirty((DAILY,), start + timedelta(days=2, hours=5))
    stale = daily()
    expected = days_of(rows(HOURLY))
    day2, day15 = (start + timedelta(days=2), "a"), (start + timedelta(days=15), "a")
    assert stale[day2] != expected[day2] and stale[day15] != expected[day15]

    assert refresh(CHECK_ROLLUP_DAILY, now=now) == STEP * 2
    assert watermark() == (end, start + timedelta(days=2 + STEP))  # the rest stays dirty
    assert daily()[day2] == expected[day2] and daily()[day15] == stale[day15]
    for k in range(2 + STEP, 20, STEP):
        assert refresh(CHECK_ROLLUP_DAILY, now=now) == min(STEP, 20 - k) * 2
        assert watermark() == (end, start + timedelta(days=k + STEP) if k + STEP < 20 else None)
    assert daily() == expected
    assert refresh(CHECK_ROLLUP_DAILY, now=now) == 0


def test_routine_refreshes_leave_it_clean_and_a_late_rewrite_marks_and_fixes_its_day(
    make_service,
):
    """The beat task's refreshes (minute, hourly, daily, every few minutes) from 22:00 on day D
    to 03:00 the next day: the hourly rollup rewrites the previous hour all through the next
    one, but before the daily rollup computes the day (two hours' settle), so it is never
    marked dirty; day D appears after 02:00, equal to its minutes. Then a late result for
    10:30 on day D: the hourly refresh marks the daily rollup dirty, the next refresh fixes
    the day."""
    services = [make_service().id, make_service().id]
    day = TODAY - timedelta(days=3)
    first, last = day + timedelta(hours=22), day + timedelta(days=1, hours=3)
    partitions.ensure(ROLLUP_TABLE, day, last)
    partitions.ensure(ROLLUP_HOURLY_TABLE, day, last)
    with connection.cursor() as cursor:
        cursor.execute(MINUTES, {"services": services, "start": day, "end": last})
    # Steady state at 22:00: the minute and hourly rollups up to date, the daily one up to D.
    RollupWatermark.objects.update_or_create(name=MINUTE, defaults={"upto": first})
    RollupWatermark.objects.update_or_create(name=HOURLY, defaults={"upto": day})
    refresh(CHECK_ROLLUP_HOURLY, now=first)
    RollupWatermark.objects.update_or_create(name=DAILY, defaults={"upto": day})

    now, seen = first + timedelta(seconds=20), []
    while now < last:
        # The daily rollup first: the worst order (two runs of the beat task may overlap).
        refresh(CHECK_ROLLUP_DAILY, now=now)
        seen.append((now, watermark()))
        refresh(ROLLUPS[MINUTE], now=now)
        refresh(CHECK_ROLLUP_HOURLY, now=now)
        assert watermark()[1] is None, f"marked dirty at {now:%H:%M:%S}"
        now += timedelta(minutes=5)

    computed = [at for at, (upto, _) in seen if upto == day + timedelta(days=1)]
    assert computed[0] == day + timedelta(days=1, hours=2, seconds=20)
    assert all(dirty is None for _, (_, dirty) in seen)
    minutes_of_day = rows(MINUTE, "WHERE bucket >= %s AND bucket < %s",
                          [day, day + timedelta(days=1)])  # fmt: skip
    assert daily() == days_of(minutes_of_day, minutes=True)

    # A late result: the minute refresh rewrites 10:30 and marks the hourly rollup from there.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {MINUTE} SET n_down = n_down + 1 WHERE service_id = %s AND bucket = %s",
            [services[0], day + timedelta(hours=10, minutes=30)],
        )
        assert cursor.rowcount == 1
    mark_dirty((HOURLY,), day + timedelta(hours=10, minutes=30))
    refresh(CHECK_ROLLUP_HOURLY, now=now)
    assert watermark() == (day + timedelta(days=1), day + timedelta(hours=10))
    assert daily() != days_of(rows(MINUTE, "WHERE bucket < %s", [day + timedelta(days=1)]),
                              minutes=True)  # fmt: skip
    assert refresh(CHECK_ROLLUP_DAILY, now=now) == 2
    assert watermark() == (day + timedelta(days=1), None)
    assert daily() == days_of(rows(MINUTE, "WHERE bucket < %s", [day + timedelta(days=1)]),
                              minutes=True)  # fmt: skip


def test_a_day_is_computed_only_once_settled():
    start = TODAY - timedelta(days=5)
    partitions.ensure(ROLLUP_HOURLY_TABLE, start, TODAY)
    with connection.cursor() as cursor:
        cursor.execute(HOURS, {"services": ["a"], "start": start, "end": TODAY})
    RollupWatermark.objects.create(name=DAILY, upto=start)
    while refresh(CHECK_ROLLUP_DAILY, now=TODAY + timedelta(hours=1, minutes=59)):
        pass
    assert watermark() == (TODAY - timedelta(days=1), None)
    assert refresh(CHECK_ROLLUP_DAILY, now=TODAY + timedelta(hours=1, minutes=59)) == 0
    assert refresh(CHECK_ROLLUP_DAILY, now=TODAY + timedelta(hours=2)) == 1
    assert watermark() == (TODAY, None)
    assert daily() == days_of(rows(HOURLY))


def test_deleting_a_service_deletes_its_daily_rows(make_service):
    service = make_service()
    start = TODAY - timedelta(days=3)
    partitions.ensure(ROLLUP_HOURLY_TABLE, start, TODAY)
    with connection.cursor() as cursor:
        cursor.execute(HOURS, {"services": [service.id, "other"], "start": start, "end": TODAY})
    RollupWatermark.objects.create(name=DAILY, upto=start)
    refresh(CHECK_ROLLUP_DAILY, now=TODAY + timedelta(hours=3))
    assert {s for _, s in daily()} == {service.id, "other"}
    actions.service_delete(actor=None, service=service)
    assert {s for _, s in daily()} == {"other"}


def test_a_catch_up_that_is_not_a_whole_number_of_buckets_is_refused():
    with pytest.raises(ValueError, match="catch_up"):
        Rollup(name="x", source="y", time_column="t", key_columns=(), select="",
               bucket=timedelta(days=1), catch_up=timedelta(hours=36))  # fmt: skip
    with pytest.raises(ValueError, match="catch_up"):
        Rollup(name="x", source="y", time_column="t", key_columns=(), select="",
               bucket=timedelta(hours=1), overlap=timedelta(hours=2),
               catch_up=timedelta(hours=2))  # fmt: skip
