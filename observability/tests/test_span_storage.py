"""The spans table on the time-series layer: partitioned by start time, its policies from the
settings, reported by `manage.py timeseries_status`, old partitions dropped by maintenance.
The TimescaleDB path (hypertable, compression, retention jobs) is in test_timescale.py."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from noc.timeseries import backend, partitions
from noc.timeseries.maintenance import maintain
from observability import actions, storage
from observability.models import Span
from observability.tests.traces_fixtures import request_of, span
from observability.timeseries import SPANS

pytestmark = pytest.mark.django_db


@pytest.fixture
def _native():
    with connection.cursor() as cursor:
        if backend.table_backend(cursor, SPANS.table) != backend.NATIVE:
            pytest.skip("the test database has TimescaleDB hypertables, not native partitions")


def test_the_policies_follow_the_settings():
    assert (SPANS.time_column, SPANS.partition) == ("start_time", timedelta(days=1))
    assert SPANS.retention == timedelta(days=30)
    assert SPANS.compress_after == timedelta(days=7)


@pytest.mark.usefixtures("_native")
def test_spans_are_partitioned_by_start_day_and_reported(capsys):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_partkeydef(%s::regclass)", [SPANS.table])
        assert cursor.fetchone()[0] == "RANGE (start_time)"
    found = partitions.existing(SPANS)
    assert found and all(p.end - p.start == timedelta(days=1) for p in found)
    call_command("timeseries_status")
    out = capsys.readouterr().out
    assert f"{SPANS.table}: native" in out
    assert "retention 30 days" in out.split(f"{SPANS.table}: native", 1)[1].split("\n\n")[0]


@pytest.mark.usefixtures("_native")
def test_a_late_span_gets_its_partition_and_maintenance_drops_expired_ones(make_application):
    application, _ = make_application("shop")
    storage.forget_partitions()
    ten_days = 10 * 86_400
    actions.spans_otlp_ingest(
        application=application, request=request_of(span("b7ad6b7169203331", seconds_ago=ten_days))
    )
    assert Span.objects.count() == 1
    short = dataclasses.replace(SPANS, retention=timedelta(days=5))
    report = maintain(short)
    assert report["dropped"]
    assert not Span.objects.exists()
    now = datetime.now(UTC)
    assert not any(p.end <= now - timedelta(days=5) for p in partitions.existing(short))
    storage.forget_partitions()
