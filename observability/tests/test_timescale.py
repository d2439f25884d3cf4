"""The TimescaleDB path of the observability tables: runs wherever the test database has the
extension, and is skipped elsewhere."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from noc.timeseries import backend
from noc.timeseries.maintenance import maintain
from observability.timeseries import DAILY_TABLE, HOURLY_TABLE, METRIC_POINTS, SPANS

pytestmark = [pytest.mark.timescale, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _require_timescale():
    with connection.cursor() as cursor:
        if backend.table_backend(cursor, METRIC_POINTS.table) != backend.TIMESCALE:
            pytest.skip("the test database has no TimescaleDB hypertables (extension absent)")


def jobs(table: str) -> dict[str, dict]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proc_name, config::text FROM timescaledb_information.jobs "
            "WHERE hypertable_name = %s",
            [table],
        )
        return {name: json.loads(config or "{}") for name, config in cursor.fetchall()}


def test_points_are_a_compressed_hypertable_with_retention_from_the_settings():
    assert maintain(METRIC_POINTS) == {"backend": backend.TIMESCALE}
    found = jobs(METRIC_POINTS.table)
    assert found["policy_compression"]["compress_after"].startswith(
        f"{METRIC_POINTS.compress_after.days} days"
    )
    assert found["policy_retention"]["drop_after"].startswith(f"{METRIC_POINTS.retention.days} d")


def test_a_changed_compression_setting_replaces_the_policy():
    spec = dataclasses.replace(METRIC_POINTS, compress_after=timedelta(days=12))
    maintain(spec)
    assert jobs(spec.table)["policy_compression"]["compress_after"].startswith("12 days")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT segmentby_column_index FROM timescaledb_information.compression_settings "
            "WHERE hypertable_name = %s AND attname = 'series_id'",
            [METRIC_POINTS.table],
        )
        assert cursor.fetchone() is not None


def test_the_rollups_are_continuous_aggregates_with_their_retention(capsys):
    for spec in (HOURLY_TABLE, DAILY_TABLE):
        assert maintain(spec) == {"backend": backend.TIMESCALE}
        assert "policy_refresh_continuous_aggregate" in jobs(spec.table)
        assert jobs(spec.table)["policy_retention"]["drop_after"].startswith(
            f"{spec.retention.days} days"
        )
    call_command("timeseries_status")
    out = capsys.readouterr().out
    assert "metrics_hourly: timescale" in out
    assert "metrics_daily: continuous aggregate" in out


def test_spans_are_a_compressed_hypertable_with_retention_from_the_settings():
    assert maintain(SPANS) == {"backend": backend.TIMESCALE}
    found = jobs(SPANS.table)
    assert found["policy_compression"]["compress_after"].startswith(
        f"{SPANS.compress_after.days} days"
    )
    assert found["policy_retention"]["drop_after"].startswith(f"{SPANS.retention.days} days")
