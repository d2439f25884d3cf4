"""The observability app's time series: metric points and their hourly and daily rollups.

`metrics_hourly` and `metrics_daily` (the seed's names) both summarise raw points, so each
bucket's p95 is exact for that bucket. On plain PostgreSQL they hold whole buckets only
(`settle`): readers take the buckets after the watermark from the raw points, as TimescaleDB's
real-time aggregates do by themselves.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from noc.timeseries.registry import PartitionIndex, TimeSeriesTable, register
from noc.timeseries.rollups import Rollup
from noc.timeseries.rollups import register as register_rollup

POINTS_TABLE = "observability_metricpoint"
HOURLY = "metrics_hourly"
DAILY = "metrics_daily"

METRIC_POINTS = register(
    TimeSeriesTable(
        table=POINTS_TABLE,
        partition=timedelta(days=1),
        retention=timedelta(days=settings.METRICS_RETENTION_DAYS),
        compress_after=timedelta(days=settings.METRICS_COMPRESS_AFTER_DAYS),
        segment_by="series_id",
        rollups=(HOURLY, DAILY),
    )
)

# count, sum, min, max, first and last (by time, for counters' increases and gauges' last
# value) and the bucket's exact 95th percentile. As migration 0001 created them: the
# migrations that change the rollups name the definitions they start from.
ROLLUP_SELECT_0001 = ", ".join(
    [
        "count(*)::integer AS count",
        "sum(value) AS sum",
        "min(value) AS min",
        "max(value) AS max",
        "(array_agg(value ORDER BY time))[1] AS first",
        "(array_agg(value ORDER BY time DESC))[1] AS last",
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p95",
    ]
)
ROLLUP_COLUMNS = ", ".join(
    [
        "series_id integer NOT NULL",
        "count integer NOT NULL",
        *(f"{c} double precision" for c in ("sum", "min", "max", "first", "last", "p95")),
    ]
)
# `increase` (added by slos/migrations/0006: SLOs read counters from it): a cumulative
# counter's increase between the bucket's first and last points, resets included (a point
# below its predecessor counts from zero), by the `counter_increase` aggregate that migration
# creates. With `first` and `last`, the increase over any run of buckets is exact: the
# buckets' own plus each step from one bucket's last point to the next one's first
# (slos/metric_sli.py).
ROLLUP_SELECT = ROLLUP_SELECT_0001 + ", counter_increase(value ORDER BY time) AS increase"
# Points a little late (a batch in flight when its hour ends) still land before the bucket
# is computed; later ones mark it dirty and it is computed again.
SETTLE = timedelta(minutes=2)
_late_window = timedelta(days=max(settings.METRICS_RETENTION_DAYS - 1, 1))

METRICS_HOURLY = register_rollup(
    Rollup(
        name=HOURLY,
        source=POINTS_TABLE,
        time_column="time",
        key_columns=("series_id",),
        select=ROLLUP_SELECT,
        bucket=timedelta(hours=1),
        overlap=timedelta(0),
        settle=SETTLE,
        late_window=_late_window,
    )
)
METRICS_DAILY = register_rollup(
    Rollup(
        name=DAILY,
        source=POINTS_TABLE,
        time_column="time",
        key_columns=("series_id",),
        select=ROLLUP_SELECT,
        bucket=timedelta(days=1),
        overlap=timedelta(0),
        settle=SETTLE,
        late_window=_late_window,
    )
)
HOURLY_TABLE = register(
    TimeSeriesTable(
        table=HOURLY,
        time_column="bucket",
        partition=timedelta(days=30),
        create_ahead=2,
        retention=timedelta(days=settings.METRICS_ROLLUP_RETENTION_DAYS),
    )
)
DAILY_TABLE = register(
    TimeSeriesTable(
        table=DAILY,
        time_column="bucket",
        partition=timedelta(days=365),
        create_ahead=1,
        retention=timedelta(days=settings.METRICS_ROLLUP_RETENTION_DAYS),
    )
)

# Log lines (the PostgreSQL log store): daily partitions or chunks, dropped past the retention.
# The trigram index (substring search) is kept per partition, by default on the days past
# only: on the day being written it would cost ingestion two thirds of its rate
# (bench/RESULTS.md, "Logs").
MESSAGE_TRIGRAMS = PartitionIndex(
    suffix="message_trgm",
    method="gin (message gin_trgm_ops)",
    on=settings.LOG_TRIGRAM_INDEX,
    extension="pg_trgm",
)
LOG_LINES = register(
    TimeSeriesTable(
        table="observability_logline",
        partition=timedelta(days=1),
        retention=timedelta(days=settings.LOG_RETENTION_DAYS),
        partition_indexes=(MESSAGE_TRIGRAMS,),
    )
)

# Spans (the seed's `traces`): daily partitions or chunks by start time, compressed after a
# week on TimescaleDB (segments by application: a trace has too few spans to be one), dropped
# past the retention.
SPANS = register(
    TimeSeriesTable(
        table="observability_span",
        time_column="start_time",
        partition=timedelta(days=1),
        retention=timedelta(days=settings.TRACES_RETENTION_DAYS),
        compress_after=timedelta(days=settings.TRACES_COMPRESS_AFTER_DAYS),
        segment_by="application_id",
    )
)
