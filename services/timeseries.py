"""The services app's time series: raw check results and their per-minute rollup."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from noc.timeseries.registry import TimeSeriesTable, register
from noc.timeseries.rollups import Rollup
from noc.timeseries.rollups import register as register_rollup
from services.choices import LATENCY_BUCKETS_MS

CHECK_RESULTS = register(
    TimeSeriesTable(
        table="services_checkresult",
        partition=timedelta(days=1),
        retention=timedelta(days=settings.NOC_CHECK_RESULTS_RETENTION_DAYS),
        compress_after=timedelta(days=7),
        segment_by="service_id",
        rollups=("services_checkrollup",),
    )
)

_counted = "NOT in_maintenance"
CHECK_ROLLUP = register_rollup(
    Rollup(
        name="services_checkrollup",
        source="services_checkresult",
        time_column="time",
        key_columns=("service_id",),
        late_window=timedelta(days=max(settings.NOC_CHECK_RESULTS_RETENTION_DAYS - 1, 1)),
        select=", ".join(
            [
                # Counts cast to integer: the continuous aggregate would otherwise make them
                # bigint, and sums over them numeric, where the native table has integers.
                f"(count(*) FILTER (WHERE {_counted} AND status = 'up'))::integer AS n_up",
                f"(count(*) FILTER (WHERE {_counted} AND status = 'degraded'))::integer"
                " AS n_degraded",
                f"(count(*) FILTER (WHERE {_counted} AND status = 'down'))::integer AS n_down",
                "(count(*) FILTER (WHERE in_maintenance))::integer AS n_maintenance",
                f"(count(response_time_ms) FILTER (WHERE {_counted}))::integer AS rt_count",
                f"sum(response_time_ms) FILTER (WHERE {_counted}) AS rt_sum",
                f"min(response_time_ms) FILTER (WHERE {_counted}) AS rt_min",
                f"max(response_time_ms) FILTER (WHERE {_counted}) AS rt_max",
                *(
                    f"(count(*) FILTER (WHERE {_counted} AND response_time_ms <= {ms}))::integer"
                    f" AS le_{ms}"
                    for ms in LATENCY_BUCKETS_MS
                ),
            ]
        ),
    )
)

# Column DDL of the native rollup table (the continuous aggregate derives its own).
CHECK_ROLLUP_COLUMNS = ", ".join(
    [
        "service_id varchar(64) NOT NULL",
        *(f"{c} integer NOT NULL" for c in ("n_up", "n_degraded", "n_down", "n_maintenance")),
        "rt_count integer NOT NULL",
        "rt_sum double precision",
        "rt_min double precision",
        "rt_max double precision",
        *(f"le_{ms} integer NOT NULL" for ms in LATENCY_BUCKETS_MS),
    ]
)
ROLLUP_TABLE = register(
    TimeSeriesTable(
        table="services_checkrollup",
        time_column="bucket",
        retention=timedelta(days=settings.NOC_CHECK_ROLLUP_RETENTION_DAYS),
    )
)

# Hourly rollup of the minute rollup: what long SLO windows and uptime over weeks read, so a
# 30-day window is 720 rows per service, not 43,200. `m_total` counts minutes with data and
# `m_good_avail` those with no failed check (availability timeslices).
_COUNTS = ("n_up", "n_degraded", "n_down", "n_maintenance", "rt_count")
_sums = ", ".join(
    f"sum({c})::integer AS {c}" for c in (*_COUNTS, *(f"le_{ms}" for ms in LATENCY_BUCKETS_MS))
)
# What a rollup of rollup rows sums besides its minute counts (hourly, daily, 10-minute).
_SUMMED = [_sums, "sum(rt_sum) AS rt_sum", "min(rt_min) AS rt_min", "max(rt_max) AS rt_max"]
CHECK_ROLLUP_HOURLY = register_rollup(
    Rollup(
        name="services_checkrollup_hourly",
        source="services_checkrollup",
        time_column="bucket",
        key_columns=("service_id",),
        bucket=timedelta(hours=1),
        overlap=timedelta(hours=1),
        late_window=timedelta(days=max(settings.NOC_CHECK_RESULTS_RETENTION_DAYS - 1, 1)),
        select=", ".join(
            [
                *_SUMMED,
                "(count(*) FILTER (WHERE n_up + n_degraded + n_down > 0))::integer AS m_total",
                "(count(*) FILTER (WHERE n_up + n_degraded + n_down > 0 AND n_down = 0))::integer"
                " AS m_good_avail",
            ]
        ),
    )
)
CHECK_ROLLUP_HOURLY_COLUMNS = (
    CHECK_ROLLUP_COLUMNS + ", m_total integer NOT NULL, m_good_avail integer NOT NULL"
)
ROLLUP_HOURLY_TABLE = register(
    TimeSeriesTable(
        table="services_checkrollup_hourly",
        time_column="bucket",
        partition=timedelta(days=30),
        create_ahead=2,
        retention=timedelta(days=settings.NOC_CHECK_ROLLUP_RETENTION_DAYS),
    )
)

# Daily rollup of the hourly one, for the whole days of long SLO windows (30 rows per service
# for 30 days, not 720): the same columns, each the sum of the day's hours (min and max for
# rt_min and rt_max), in UTC days. Each day is computed once, when settled: the hourly rollup
# (overlap an hour) rewrites the previous hour throughout the next one, so hour 23 of a day is
# final after 01:00 the next day; two hours' settle computes the day after that, and a
# routine hourly refresh never marks it dirty (only a late write does, through the hourly's
# downstream marking). `catch_up`: a first refresh over months of hourly rows (the refresh
# starts from the oldest) goes two days per run of the beat task: about 5 s at 100,000
# services, where the task already takes 8-10 s every 15 s (a week would be about 19 s).
# Native only: on TimescaleDB the SLO evaluation keeps no sums and reads the hourly continuous
# aggregate, so nothing would read a daily one.
CHECK_ROLLUP_DAILY = register_rollup(
    Rollup(
        name="services_checkrollup_daily",
        source="services_checkrollup_hourly",
        time_column="bucket",
        key_columns=("service_id",),
        bucket=timedelta(days=1),
        overlap=timedelta(0),
        settle=timedelta(hours=2),
        catch_up=timedelta(days=2),
        native_only=True,
        select=", ".join(
            [
                *_SUMMED,
                "sum(m_total)::integer AS m_total",
                "sum(m_good_avail)::integer AS m_good_avail",
            ]
        ),
    )
)
CHECK_ROLLUP_DAILY_COLUMNS = CHECK_ROLLUP_HOURLY_COLUMNS
ROLLUP_DAILY_TABLE = register(
    TimeSeriesTable(
        table="services_checkrollup_daily",
        time_column="bucket",
        partition=timedelta(days=365),
        create_ahead=1,
        retention=timedelta(days=settings.NOC_CHECK_ROLLUP_RETENTION_DAYS),
    )
)

# 10-minute rollup of the per-minute one, for the SLO evaluation's cold path: its per-minute
# kept sums (ranges of at most 6 h starting on 10-minute blocks) take whole 10-minute buckets,
# 36 rows per service for 6 h instead of 360. The hourly rollup's own SELECT (it reads the
# minute rollup too) and columns. Each bucket is computed once, when settled: the minute rollup
# (overlap 2 min) rewrites a minute in each refresh whose previous one ran less than 2 minutes
# after the minute ended (at the beat's 15 s, until about 2:15 after it), so a bucket is final 3
# minutes after it ends; with that settle a routine minute refresh never marks this rollup dirty
# (the one after the refresh computing a bucket rewrites from the bucket's end on); a late write
# does, through the minute refresh's downstream marking, and the next refresh recomputes it.
# `catch_up` 2 h: a first refresh starts from the oldest minute row within the retention below
# (2 days, not the minute rollup's 400) and catches up in 24 runs of the beat task, 6 minutes.
# A run then reads 2 h of minute rows, 12 M at 100,000 services: at the rate measured for the
# daily rollup (about 1 µs a source row; not measured for this one) some 12 s, beside the 8-10 s
# the task already takes there, inside its 60 s limit; twice that would leave little margin, and
# less only takes longer to reach now. Late writes older than 2 h are recomputed in such steps.
# Retention 2 days: only the last 6 hours are read. Partitions of a day, created a week ahead as
# the minute rollup's. Native only, as the daily rollup: on TimescaleDB the SLO evaluation keeps
# no sums.
CHECK_ROLLUP_10MIN = register_rollup(
    Rollup(
        name="services_checkrollup_10min",
        source="services_checkrollup",
        time_column="bucket",
        key_columns=("service_id",),
        bucket=timedelta(minutes=10),
        overlap=timedelta(0),
        settle=timedelta(minutes=3),
        catch_up=timedelta(hours=2),
        native_only=True,
        select=CHECK_ROLLUP_HOURLY.select,
    )
)
CHECK_ROLLUP_10MIN_COLUMNS = CHECK_ROLLUP_HOURLY_COLUMNS
ROLLUP_10MIN_TABLE = register(
    TimeSeriesTable(
        table="services_checkrollup_10min",
        time_column="bucket",
        partition=timedelta(days=1),
        retention=timedelta(days=2),
    )
)
