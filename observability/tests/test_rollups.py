"""metrics_hourly and metrics_daily: the same rows on both backends (native refresh here,
real-time continuous aggregates on TimescaleDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from noc.timeseries.rollups import is_native, refresh
from observability import actions
from observability.models import MetricSeries
from observability.tests.fixtures import point
from observability.timeseries import METRICS_DAILY, METRICS_HOURLY
from services.tests.fixtures import refresh_rollups

pytestmark = pytest.mark.django_db
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def rollup_rows(table: str, series_id: int) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT bucket, count, sum, min, max, first, last, p95 FROM {table} "
            "WHERE series_id = %s ORDER BY bucket",
            [series_id],
        )
        return cursor.fetchall()


def test_each_hour_gets_count_sum_min_max_first_last_and_p95(application):
    values = [5.0, 1.0, 9.0, *range(10, 27)]  # 20 values in the first hour
    batch = [point("latency", v, HOUR + timedelta(minutes=i)) for i, v in enumerate(values)]
    batch.append(point("latency", 100, HOUR + timedelta(hours=1, minutes=5)))
    actions.metric_points_ingest(application=application, points=batch)
    refresh_rollups(METRICS_HOURLY.name)
    series_id = MetricSeries.objects.get(application=application).pk
    first, second = rollup_rows("metrics_hourly", series_id)
    ordered = sorted(values)
    p95 = ordered[18] + 0.05 * (ordered[19] - ordered[18])  # percentile_cont(0.95) of 20 values
    assert first == (HOUR, 20, sum(values), 1.0, 26.0, 5.0, 26.0, pytest.approx(p95))
    assert second == (HOUR + timedelta(hours=1), 1, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0)


def test_each_day_summarises_the_raw_points_of_that_day(application):
    day = HOUR.replace(hour=0) - timedelta(days=2)
    batch = [point("queue", v, day + timedelta(hours=v)) for v in (1, 5, 23)]
    actions.metric_points_ingest(application=application, points=batch)
    refresh_rollups(METRICS_DAILY.name)
    series_id = MetricSeries.objects.get(application=application).pk
    [row] = rollup_rows("metrics_daily", series_id)
    assert row[:7] == (day, 3, 29.0, 1.0, 23.0, 1.0, 23.0)


def test_the_native_refresh_computes_a_closed_hour_once_and_again_after_a_late_point(
    application,
):
    if not is_native(METRICS_HOURLY):
        pytest.skip("TimescaleDB refreshes its continuous aggregates itself")
    now = HOUR + timedelta(hours=2, minutes=30)
    actions.metric_points_ingest(
        application=application, points=[point("m", 1, HOUR + timedelta(minutes=1))],
        now_us=int(now.timestamp() * 1e6),
    )  # fmt: skip
    assert refresh(METRICS_HOURLY, now=now) >= 1
    assert refresh(METRICS_HOURLY, now=now + timedelta(seconds=15)) == 0  # nothing closed since
    # The open hour is never materialized: readers take it from the raw points.
    series_id = MetricSeries.objects.get(application=application).pk
    assert [r[0] for r in rollup_rows("metrics_hourly", series_id)] == [HOUR]
    actions.metric_points_ingest(
        application=application, points=[point("m", 3, HOUR + timedelta(minutes=2))],
        now_us=int(now.timestamp() * 1e6),
    )  # fmt: skip
    refresh(METRICS_HOURLY, now=now + timedelta(seconds=30))
    [row] = rollup_rows("metrics_hourly", series_id)
    assert row[1:3] == (2, 4.0)


def test_a_counters_increase_in_each_bucket_counts_a_reset_from_zero(application):
    # 10 → 40 (+30), a restart to 5 (+5), 5 → 25 (+20): 55 within the hour; the next hour's
    # bucket holds its own points' increase only (the step between buckets is the reader's).
    values = [10, 25, 40, 5, 25]
    batch = [point("requests_total", v, HOUR + timedelta(minutes=i)) for i, v in enumerate(values)]
    batch += [point("requests_total", v, HOUR + timedelta(hours=1, minutes=i)) for i, v in
              enumerate([30, 2, 4])]  # fmt: skip
    actions.metric_points_ingest(application=application, points=batch)
    refresh_rollups(METRICS_HOURLY.name)
    refresh_rollups(METRICS_DAILY.name)
    series_id = MetricSeries.objects.get(application=application).pk
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT bucket, first, last, increase FROM metrics_hourly WHERE series_id = %s "
            "ORDER BY bucket",
            [series_id],
        )
        hours = cursor.fetchall()
    assert hours == [
        (HOUR, 10.0, 25.0, 55.0),
        (HOUR + timedelta(hours=1), 30.0, 4.0, 4.0),  # 30 → 2 is a reset (+2), then +2
    ]
