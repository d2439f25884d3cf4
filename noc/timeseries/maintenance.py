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
    """Retention and compression follow the settings: a policy whose period changed is
    replaced."""
    if spec.retention is not None:
        _keep_policy(spec.table, "policy_retention", "drop_after", spec.retention)
    if spec.compress_after is not None and _compression_enabled(spec.table):
        _keep_policy(spec.table, "policy_compression", "compress_after", spec.compress_after)


def _keep_policy(table: str, proc: str, key: str, period) -> None:
    kind = proc.removeprefix("policy_")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT config->>'{key}' FROM timescaledb_information.jobs "
            "WHERE proc_name = %s AND hypertable_name = %s",
            [proc, table],
        )
        row = cursor.fetchone()
        wanted = interval_sql(period)
        if row is not None:
            cursor.execute("SELECT %s::interval = %s::interval", [row[0], wanted])
            if cursor.fetchone()[0]:
                return
            cursor.execute(f"SELECT remove_{kind}_policy(%s)", [table])
        cursor.execute(f"SELECT add_{kind}_policy(%s, %s::interval)", [table, wanted])


def _compression_enabled(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT compression_enabled FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = %s",
            [table],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def maintain_all() -> dict[str, dict]:
    return {table: maintain(spec) for table, spec in TABLES.items()}
