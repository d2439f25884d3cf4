"""The time-series layer on plain PostgreSQL (native partitions and rollups), and the
backend choice. The TimescaleDB path runs in test_timescale.py wherever the extension exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from noc.models import RollupWatermark
from noc.timeseries import backend, partitions
from noc.timeseries.registry import TABLES, TimeSeriesTable
from noc.timeseries.rollups import ROLLUPS, refresh
from services import actions
from services.actions import Observation
from services.models import CheckRollup
from services.tests.fixtures import refresh_rollups
from services.timeseries import CHECK_RESULTS

pytestmark = pytest.mark.django_db

# Tests of the native backend itself: skipped where the tables were created as hypertables.
native_only = pytest.mark.usefixtures("_native_tables")


@pytest.fixture
def _native_tables():
    with connection.cursor() as cursor:
        if backend.table_backend(cursor, "services_checkresult") != backend.NATIVE:
            pytest.skip("the test database has TimescaleDB hypertables, not native partitions")


@native_only
def test_the_check_results_table_is_range_partitioned_by_day():
    with connection.cursor() as cursor:
        assert backend.table_backend(cursor, "services_checkresult") == backend.NATIVE
    found = partitions.existing(CHECK_RESULTS)
    assert len(found) >= 8
    assert all(p.end - p.start == timedelta(days=1) for p in found)
    assert found[-1].end > datetime.now(UTC) + timedelta(days=6)


@native_only
def test_partitions_are_created_for_a_range_and_only_once():
    start = datetime(2025, 3, 1, 12, tzinfo=UTC)
    created = partitions.ensure(CHECK_RESULTS, start, start + timedelta(days=2))
    assert created == [
        "services_checkresult_p20250301",
        "services_checkresult_p20250302",
        "services_checkresult_p20250303",
    ]
    assert partitions.ensure(CHECK_RESULTS, start, start + timedelta(days=2)) == []


@native_only
def test_expired_partitions_are_dropped_and_recent_ones_kept():
    spec = TimeSeriesTable(table="services_checkresult", retention=timedelta(days=30))
    now = datetime.now(UTC)
    partitions.ensure(spec, now - timedelta(days=40), now - timedelta(days=38))
    dropped = partitions.drop_expired(spec, now=now)
    assert dropped
    assert all(
        p.end <= now - timedelta(days=30) for p in partitions.existing(spec) if p.name in dropped
    )
    assert not any(p.end <= now - timedelta(days=30) for p in partitions.existing(spec))
    assert any(p.start <= now < p.end for p in partitions.existing(spec))


@native_only
def test_a_result_outside_existing_partitions_creates_its_partition(make_service):
    service = make_service()
    old = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
    actions.check_results_record(
        results=[Observation(service_id=service.id, due=old, started_at=old, status="up")]
    )
    assert "services_checkresult_p20240601" in {p.name for p in partitions.existing(CHECK_RESULTS)}


def test_auto_chooses_timescale_only_where_available_and_timescale_is_refused_elsewhere(
    monkeypatch,
):
    with connection.cursor() as cursor:
        available = backend.timescale_available(cursor)
    monkeypatch.setenv("NOC_TIMESERIES", "auto")
    assert backend.choose(connection) == (backend.TIMESCALE if available else backend.NATIVE)
    monkeypatch.setenv("NOC_TIMESERIES", "native")
    assert backend.choose(connection) == backend.NATIVE
    monkeypatch.setenv("NOC_TIMESERIES", "timescale")
    if available:
        assert backend.choose(connection) == backend.TIMESCALE
    else:
        with pytest.raises(ImproperlyConfigured, match="timescaledb extension is not available"):
            backend.choose(connection)
    monkeypatch.setenv("NOC_TIMESERIES", "influx")
    with pytest.raises(ImproperlyConfigured, match="auto, timescale or native"):
        backend.choose(connection)


def record(service, minute: datetime, statuses_and_ms, maintenance=False):
    actions.check_results_record(
        results=[
            Observation(service_id=service.id, due=minute + timedelta(seconds=i * 10),
                        started_at=minute, status=status, response_time_ms=ms)
            for i, (status, ms) in enumerate(statuses_and_ms)
        ]
    )  # fmt: skip


def test_the_rollup_counts_statuses_latency_and_histogram_per_minute(make_service):
    service = make_service()
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    record(service, minute, [("up", 40), ("up", 120), ("degraded", 900), ("down", None)])
    RollupWatermark.objects.update_or_create(
        name="services_checkrollup", defaults={"upto": minute - timedelta(minutes=1)}
    )
    refresh_rollups("services_checkrollup")  # a real-time continuous aggregate needs none
    row = CheckRollup.objects.get(service_id=service.id, bucket=minute)
    assert (row.n_up, row.n_degraded, row.n_down, row.n_maintenance) == (2, 1, 1, 0)
    assert (row.rt_count, row.rt_sum, row.rt_min, row.rt_max) == (3, 1060, 40, 900)
    assert (row.le_50, row.le_100, row.le_250, row.le_1000, row.le_10000) == (1, 1, 2, 3, 3)


@native_only
def test_refreshing_twice_gives_the_same_rollup(make_service):
    service = make_service()
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    record(service, minute, [("up", 10)])
    refresh(ROLLUPS["services_checkrollup"])
    refresh(ROLLUPS["services_checkrollup"])
    assert CheckRollup.objects.get(service_id=service.id, bucket=minute).n_up == 1


@native_only
def test_a_result_written_late_marks_the_rollup_dirty_and_is_counted(make_service):
    service = make_service()
    refresh(ROLLUPS["services_checkrollup"])
    old_minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    record(service, old_minute, [("down", None)])
    mark = RollupWatermark.objects.get(name="services_checkrollup")
    assert mark.dirty_since == old_minute
    refresh(ROLLUPS["services_checkrollup"])
    assert CheckRollup.objects.get(service_id=service.id, bucket=old_minute).n_down == 1
    assert RollupWatermark.objects.get(name="services_checkrollup").dirty_since is None


@native_only
def test_a_late_write_older_than_the_rollup_partitions_gets_them_within_retention(make_service):
    service = make_service()
    rollup, now = ROLLUPS["services_checkrollup"], datetime.now(UTC)
    refresh(rollup, now=now)
    ten_days_ago = now.replace(second=0, microsecond=0) - timedelta(days=10)
    record(service, ten_days_ago, [("down", None)])
    ancient = datetime(2020, 1, 1, tzinfo=UTC)  # far beyond the rollup's retention
    record(service, ancient, [("down", None)])

    refresh(rollup, now=now)  # used to fail: no rollup partition for those buckets

    assert CheckRollup.objects.get(service_id=service.id, bucket=ten_days_ago).n_down == 1
    assert not CheckRollup.objects.filter(bucket__lt=now - timedelta(days=400)).exists()
    names = {p.name for p in partitions.existing(TABLES["services_checkrollup"])}
    assert partitions.partition_name(TABLES["services_checkrollup"], ten_days_ago) in names
    assert not any(name.endswith("_p20200101") for name in names)
    # Only the day that has a late write, not every day between it and today.
    assert (
        not {
            partitions.partition_name(
                TABLES["services_checkrollup"], ten_days_ago + timedelta(days=d)
            )
            for d in (-1, 1, 2)
        }
        & names
    )
    assert RollupWatermark.objects.get(name=rollup.name).dirty_since is None


@native_only
def test_timeseries_status_reports_backend_partitions_and_rollup_lag(capsys):
    refresh(ROLLUPS["services_checkrollup"])
    call_command("timeseries_status")
    out = capsys.readouterr().out
    assert "backend for new tables: native" in out
    assert "services_checkresult: native" in out
    assert "services_checkrollup: native table" in out
    assert "behind" in out


@native_only
def test_the_maintenance_task_creates_ahead_and_reports_per_table():
    from noc.tasks import timeseries_maintain

    report = timeseries_maintain()
    assert report["services_checkresult"]["backend"] == "native"
    assert "services_checkrollup" in report
