"""The TimescaleDB path: runs wherever the test database has the extension (docker-compose,
or a PostgreSQL with timescaledb preloaded), and is skipped elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from noc.timeseries import backend
from noc.timeseries.maintenance import maintain
from services import actions
from services.actions import Observation
from services.models import CheckRollup
from services.timeseries import CHECK_RESULTS, ROLLUP_TABLE

pytestmark = [pytest.mark.timescale, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _require_timescale():
    with connection.cursor() as cursor:
        if backend.table_backend(cursor, "services_checkresult") != backend.TIMESCALE:
            pytest.skip("the test database has no TimescaleDB hypertables (extension absent)")


def test_check_results_are_a_hypertable_with_compression():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proc_name FROM timescaledb_information.jobs WHERE hypertable_name = %s",
            ["services_checkresult"],
        )
        jobs = {row[0] for row in cursor.fetchall()}
    assert "policy_compression" in jobs


def test_the_hypertable_has_the_model_indexes_and_no_duplicate_default_one():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'services_checkresult'")
        indexes = {row[0] for row in cursor.fetchall()}
    assert indexes == {"services_checkresult_pkey", "checkresult_time_idx"}


def test_maintenance_applies_the_retention_policy_from_the_settings():
    assert maintain(CHECK_RESULTS) == {"backend": backend.TIMESCALE}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_retention' AND hypertable_name = 'services_checkresult'"
        )
        (drop_after,) = cursor.fetchone()
    assert drop_after.startswith(f"{CHECK_RESULTS.retention.days} days")
    maintain(CHECK_RESULTS)  # idempotent: the same policy is kept


def test_the_continuous_aggregate_gets_its_retention_and_is_reported(capsys):
    assert maintain(ROLLUP_TABLE) == {"backend": backend.TIMESCALE}
    call_command("timeseries_status")
    out = capsys.readouterr().out
    assert "services_checkresult: timescale" in out
    assert "services_checkrollup: timescale" in out
    assert f'"drop_after": "{ROLLUP_TABLE.retention.days} days"' in out
    assert "policy_refresh_continuous_aggregate" in out


def test_the_rollup_is_a_real_time_continuous_aggregate_read_like_the_native_table(make_service):
    service = make_service()
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    actions.check_results_record(
        results=[
            Observation(service_id=service.id, due=minute + timedelta(seconds=s), started_at=minute,
                        status=status, response_time_ms=ms)
            for s, status, ms in [(0, "up", 40), (20, "down", None), (40, "up", 300)]
        ]
    )  # fmt: skip
    row = CheckRollup.objects.get(service_id=service.id, bucket=minute)
    assert (row.n_up, row.n_down, row.rt_count, row.le_50, row.le_500) == (2, 1, 2, 1, 2)
