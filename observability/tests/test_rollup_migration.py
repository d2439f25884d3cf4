"""slos/migrations/0006's change to the metric rollups (a counter's increase) on populated
tables, forward and back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from noc.models import RollupWatermark
from noc.timeseries import partitions
from noc.timeseries.rollups import is_native, refresh
from observability.models import Application, MetricSeries
from observability.timeseries import HOURLY, HOURLY_TABLE, METRIC_POINTS, METRICS_HOURLY

BEFORE = [("slos", "0005_kept_sli_minute_sums")]
AFTER = [("slos", "0006_metric_slis")]
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def hourly_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM metrics_hourly ORDER BY series_id, bucket")
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_the_rollups_gain_an_increase_that_the_refresh_fills_and_lose_it_going_back():
    if not is_native(METRICS_HOURLY):
        pytest.skip("TimescaleDB recreates its continuous aggregates: nothing to keep here")
    migrate(BEFORE)  # observability's own tables stay as they are
    application = Application.objects.create(slug="shop", name="Shop")
    series = MetricSeries.objects.create(
        application=application, name="requests_total", fingerprint=uuid.uuid4(), kind="counter"
    )
    partitions.ensure(METRIC_POINTS, HOUR, HOUR + timedelta(hours=1))
    partitions.ensure(HOURLY_TABLE, HOUR, HOUR + timedelta(hours=1))
    with connection.cursor() as cursor:
        # 10 → 40, a restart at 5, then 25: an increase of 30 + 5 + 20.
        cursor.executemany(
            "INSERT INTO observability_metricpoint (series_id, time, value) VALUES (%s, %s, %s)",
            [(series.pk, HOUR + timedelta(minutes=i), v) for i, v in enumerate([10, 40, 5, 25])],
        )
        # The hourly row as the refresh before 0004 wrote it.
        cursor.execute(
            "INSERT INTO metrics_hourly (bucket, series_id, count, sum, min, max, first, last, "
            "p95) VALUES (%s, %s, 4, 80, 5, 40, 10, 25, 38.5)",
            [HOUR, series.pk],
        )
    RollupWatermark.objects.create(name=HOURLY, upto=HOUR + timedelta(hours=1))
    try:
        migrate(AFTER)
        [row] = hourly_rows()
        assert (row["count"], row["last"], row["increase"]) == (4, 25.0, None)
        # Recent buckets are marked for the refresh, which computes their increase.
        assert RollupWatermark.objects.get(name=HOURLY).dirty_since <= HOUR
        refresh(METRICS_HOURLY, now=HOUR + timedelta(hours=2))
        [row] = hourly_rows()
        assert row["increase"] == 55.0
        migrate(BEFORE)
        [row] = hourly_rows()
        assert "increase" not in row and row["count"] == 4
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
