"""Keeping every registered time-series table in line with its policies."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection

from noc.timeseries import backend, partitions
from noc.timeseries.operations import interval_sql
from noc.timeseries.registry import TABLES, TimeSeriesTable
from noc.timeseries.rollups import ROLLUPS, Rollup, refresh_window

REFRESH_PROC = "policy_refresh_continuous_aggregate"


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


def keep_refresh_policy(rollup: Rollup) -> str | None:
    """Keep a continuous aggregate's refresh look-back below its source's retention as the
    settings have it now. A retention lowered after migrating left the policy of the old one,
    whose next run would recompute buckets over dropped chunks and delete their rows. Returns
    what changed: "replaced", "removed" (the retention leaves less than the three buckets a
    policy needs; real-time reads still cover the recent ones), or None."""
    window = refresh_window(rollup)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT config->>'start_offset' FROM timescaledb_information.jobs "
            "WHERE proc_name = %s AND hypertable_name = %s",
            [REFRESH_PROC, rollup.name],
        )
        row = cursor.fetchone()
        if row is not None and window >= 3 * rollup.bucket:
            cursor.execute("SELECT %s::interval = %s::interval", [row[0], interval_sql(window)])
            if cursor.fetchone()[0]:
                return None
        if row is not None:
            cursor.execute("SELECT remove_continuous_aggregate_policy(%s)", [rollup.name])
        if window < 3 * rollup.bucket:
            return "removed" if row is not None else None
        cursor.execute(
            "SELECT add_continuous_aggregate_policy(%s, start_offset => %s::interval, "
            "end_offset => %s::interval, schedule_interval => %s::interval)",
            [rollup.name, interval_sql(window), interval_sql(rollup.bucket),
             interval_sql(rollup.bucket)],
        )  # fmt: skip
    return "replaced"


def maintain_all(schedule_index_build: Callable[[str, str, str], object] | None = None,
                 ) -> dict[str, dict]:  # fmt: skip
    """Every table's partitions and policies. Partition indexes still to build are handed to
    `schedule_index_build` (table, partition, index suffix) when given (the task schedules one
    task a build: a big day's index may take longer than this task may run), built here
    otherwise."""
    # Refresh windows first: a retention policy shortened below them must find them shortened.
    changed = {}
    for name, rollup in ROLLUPS.items():
        if backend.table_backend_of(connection, name) == backend.TIMESCALE:
            changed[name] = keep_refresh_policy(rollup)
    done = {table: maintain(spec) for table, spec in TABLES.items()}
    # Indexes last: a slow drop or build costs no table its partitions.
    for table, spec in TABLES.items():
        if spec.partition_indexes and done[table]["backend"] == backend.NATIVE:
            done[table]["indexes"] = partitions.keep_indexes(spec, schedule=schedule_index_build)
    for name, change in changed.items():
        if change:
            done.setdefault(name, {})["refresh_policy"] = change
    return done
