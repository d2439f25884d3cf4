"""Keeping every registered time-series table in line with its policies."""

from __future__ import annotations

from django.db import connection

from noc.timeseries import backend, partitions
from noc.timeseries.operations import interval_sql
from noc.timeseries.registry import TABLES, TimeSeriesTable


def maintain(spec: TimeSeriesTable) -> dict:
    kind = backend.table_backend_of(connection, spec.table)
    if kind == backend.NATIVE:
        return {
            "backend": kind,
            "created": partitions.ensure_ahead(spec),
            "dropped": partitions.drop_expired(spec),
        }
    if kind == backend.TIMESCALE:
        apply_timescale_policies(spec)
        return {"backend": kind}
    return {"backend": None}


def apply_timescale_policies(spec: TimeSeriesTable) -> None:
    """Retention follows the settings: replace the policy when the period changed."""
    if spec.retention is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_retention' AND hypertable_name = %s",
            [spec.table],
        )
        row = cursor.fetchone()
        wanted = interval_sql(spec.retention)
        if row is not None:
            cursor.execute("SELECT %s::interval = %s::interval", [row[0], wanted])
            if cursor.fetchone()[0]:
                return
            cursor.execute("SELECT remove_retention_policy(%s)", [spec.table])
        cursor.execute("SELECT add_retention_policy(%s, %s::interval)", [spec.table, wanted])


def maintain_all() -> dict[str, dict]:
    return {table: maintain(spec) for table, spec in TABLES.items()}
