"""What `manage.py timeseries_status` reports: backend, partitions or chunks, policies, rollup
lag and sizes of every registered table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection

from noc.timeseries import backend, partitions
from noc.timeseries.registry import TABLES
from noc.timeseries.rollups import ROLLUPS


@dataclass
class TableStatus:
    table: str
    backend: str | None
    size_bytes: int
    partitions: list[str] = field(default_factory=list)
    oldest: datetime | None = None
    newest: datetime | None = None
    policies: list[str] = field(default_factory=list)
    note: str = ""  # why a registered table does not exist, when that is expected


@dataclass
class RollupStatus:
    name: str
    kind: str
    upto: datetime | None
    lag_seconds: float | None
    last_duration_ms: float | None


def table_size(table: str) -> int:
    with connection.cursor() as cursor:
        kind = backend.table_backend(cursor, table)
        if kind == backend.TIMESCALE:
            cursor.execute("SELECT hypertable_size(%s::regclass)", [table])
        else:
            cursor.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relname = %s OR c.oid IN (SELECT inhrelid FROM pg_inherits "
                "WHERE inhparent = %s::regclass)",
                [table, table],
            )
        return int(cursor.fetchone()[0] or 0)


def table_status(name: str) -> TableStatus:
    spec = TABLES[name]
    kind = backend.table_backend_of(connection, name)
    status = TableStatus(table=name, backend=kind, size_bytes=table_size(name) if kind else 0)
    if kind is None:
        status.note = not_created(name)
    if kind == backend.NATIVE:
        found = partitions.existing(spec)
        status.partitions = [p.name for p in found]
        if found:
            status.oldest, status.newest = found[0].start, found[-1].end
        if spec.retention:
            status.policies.append(f"retention {spec.retention.days} days (beat task)")
    elif kind == backend.TIMESCALE:
        status.partitions, status.policies = timescale_chunks_and_jobs(name)
    return status


def timescale_chunks_and_jobs(table: str) -> tuple[list[str], list[str]]:
    with connection.cursor() as cursor:
        # A continuous aggregate keeps its chunks in its materialization hypertable.
        cursor.execute(
            "SELECT chunk_name, is_compressed FROM timescaledb_information.chunks "
            "WHERE hypertable_name = %s OR hypertable_name IN (SELECT "
            "materialization_hypertable_name FROM timescaledb_information.continuous_aggregates "
            "WHERE view_name = %s) ORDER BY range_start",
            [table, table],
        )
        chunks = [f"{name}{' (compressed)' if compressed else ''}" for name, compressed in cursor]
        cursor.execute(
            "SELECT proc_name, schedule_interval, config::text FROM timescaledb_information.jobs "
            "WHERE hypertable_name = %s",
            [table],
        )
        jobs = [f"{proc} every {interval}: {config}" for proc, interval, config in cursor]
    return chunks, jobs


def rollup_status(name: str) -> RollupStatus:
    from noc.models import RollupWatermark

    kind = backend.table_backend_of(connection, name)
    if kind == backend.TIMESCALE:
        return continuous_aggregate_status(name)
    if kind is None:
        return RollupStatus(name, not_created(name) or "missing", None, None, None)
    mark = RollupWatermark.objects.filter(name=name).first()
    if mark is None:
        return RollupStatus(name, "native table (never refreshed)", None, None, None)
    lag = (datetime.now(UTC) - mark.upto).total_seconds()
    return RollupStatus(name, "native table", mark.upto, lag, mark.last_duration_ms)


def not_created(name: str) -> str:
    """Why a registered table is absent, when by design: a native-only rollup whose source is
    on TimescaleDB. Empty otherwise (a migration not applied, say)."""
    rollup = ROLLUPS.get(name)
    if rollup is None or not rollup.native_only:
        return ""
    if backend.table_backend_of(connection, rollup.source) != backend.TIMESCALE:
        return ""
    return f"not created (native only; its source {rollup.source} is on TimescaleDB)"


def continuous_aggregate_status(name: str) -> RollupStatus:
    """Readers see real-time data, but the refresh job can still fail: report how long ago it
    last succeeded, so a broken policy shows up as a growing lag."""
    with connection.cursor() as cursor:
        cursor.execute(
            # A job that never succeeded reports -infinity here, not NULL (which psycopg
            # cannot load as a datetime).
            "SELECT NULLIF(s.last_successful_finish, '-infinity'), s.last_run_status, "
            "s.last_run_duration "
            "FROM timescaledb_information.jobs j "
            "JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id "
            # A continuous aggregate's policy names the view as its hypertable.
            "WHERE j.hypertable_name = %s AND j.proc_name = 'policy_refresh_continuous_aggregate'",
            [name],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return RollupStatus(
            name, "continuous aggregate (refresh never succeeded)", None, None, None
        )
    finished, last_status, duration = row
    lag = (datetime.now(UTC) - finished).total_seconds()
    took = duration.total_seconds() * 1000 if duration else None
    kind = f"continuous aggregate (real-time reads; last refresh {last_status})"
    return RollupStatus(name, kind, finished, lag, took)


def report() -> tuple[str, list[TableStatus], list[RollupStatus]]:
    chosen = backend.choose(connection)
    return (
        chosen,
        [table_status(name) for name in sorted(TABLES)],
        [rollup_status(name) for name in sorted(ROLLUPS)],
    )
