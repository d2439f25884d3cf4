"""A rollup's refresh never looks back past what its source still holds in full: a retention
lowered after migrating must not let a refresh recompute (natively: overwrite with partial
rows; on TimescaleDB: delete) the buckets of dropped days."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from noc.timeseries import backend
from noc.timeseries.maintenance import keep_refresh_policy
from noc.timeseries.registry import TABLES
from noc.timeseries.rollups import is_native, mark_dirty, refresh, refresh_window
from observability import actions
from observability.tests.fixtures import point
from observability.timeseries import METRIC_POINTS, METRICS_DAILY, METRICS_HOURLY

pytestmark = pytest.mark.django_db


@pytest.fixture
def lowered_retention(monkeypatch):
    """The points' retention set to 2 days in this process, as a changed setting would."""
    lowered = dataclasses.replace(METRIC_POINTS, retention=timedelta(days=2))
    monkeypatch.setitem(TABLES, METRIC_POINTS.table, lowered)
    return lowered


def test_the_refresh_window_follows_a_lowered_retention(lowered_retention):
    assert refresh_window(METRICS_HOURLY) == timedelta(days=2) - timedelta(hours=1)
    assert refresh_window(METRICS_DAILY) == timedelta(days=1)


def test_the_refresh_window_is_the_late_window_below_the_retention():
    assert refresh_window(METRICS_HOURLY) == METRICS_HOURLY.late_window
    assert METRICS_HOURLY.late_window < METRIC_POINTS.retention


def test_a_native_refresh_leaves_buckets_older_than_the_source_retention(
    application, lowered_retention
):
    if not is_native(METRICS_HOURLY):
        pytest.skip("the native refresh only")
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    actions.metric_points_ingest(
        application=application, points=[point("m", v, hour + timedelta(minutes=v)) for v in (1, 2)]
    )
    mark_dirty((METRICS_HOURLY.name,), hour)
    # First refresh from scratch, with the retention as it was (the fixture not yet applied).
    TABLES[METRIC_POINTS.table] = dataclasses.replace(lowered_retention, retention=None)
    refresh(METRICS_HOURLY, now=now)
    TABLES[METRIC_POINTS.table] = lowered_retention
    # Retention takes part of that hour's rows; a late write marks the hour dirty.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM observability_metricpoint WHERE value = 1")
    mark_dirty((METRICS_HOURLY.name,), hour)
    refresh(METRICS_HOURLY, now=now + timedelta(minutes=1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count, sum FROM metrics_hourly WHERE bucket = %s", [hour])
        assert cursor.fetchone() == (2, 3.0)  # as computed while complete


@pytest.mark.timescale
def test_maintenance_shortens_a_continuous_aggregates_refresh_policy(lowered_retention):
    with connection.cursor() as cursor:
        if backend.table_backend(cursor, METRICS_HOURLY.name) != backend.TIMESCALE:
            pytest.skip("the test database has no TimescaleDB continuous aggregates")
    assert keep_refresh_policy(METRICS_HOURLY) == "replaced"
    assert keep_refresh_policy(METRICS_HOURLY) is None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (config->>'start_offset')::interval FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_refresh_continuous_aggregate' AND hypertable_name = %s",
            [METRICS_HOURLY.name],
        )
        assert cursor.fetchone()[0] == timedelta(days=2) - timedelta(hours=1)
