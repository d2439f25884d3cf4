"""Rollups: continuous aggregates on TimescaleDB, tables kept incrementally on plain PostgreSQL.

A `Rollup` names its source and target and gives one SELECT written with `{bucket}` where the
time bucket goes: `time_bucket(...)` for the continuous aggregate, `date_bin(...)` for the
native refresh, which recomputes whole buckets from a watermark and upserts them (idempotent).
Readers query the target by the same name on both backends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from noc.timeseries import backend, partitions
from noc.timeseries.operations import interval_sql
from noc.timeseries.registry import TABLES, TimeSeriesTable


@dataclass(frozen=True)
class Rollup:
    name: str  # the target table or continuous aggregate
    source: str
    time_column: str
    key_columns: tuple[str, ...]  # besides the bucket: the upsert conflict target
    select: str  # SELECT list after the bucket and keys, e.g. "count(*) AS n"
    bucket: timedelta = timedelta(minutes=1)
    # Native: buckets this far behind the watermark are recomputed every refresh, for results
    # that arrive a little late without marking the rollup dirty.
    overlap: timedelta = timedelta(minutes=2)
    # TimescaleDB: how far back the refresh policy looks for late writes. Kept below the raw
    # retention, since refreshing a range whose raw chunks were dropped would empty it (the
    # maintenance task lowers the policy's window when the retention is lowered later:
    # `refresh_window`).
    late_window: timedelta = timedelta(days=29)
    # Native: when set, only buckets that ended this long ago are computed, each once (plus
    # late writes, which mark it dirty); readers take newer buckets from the source. Without
    # it, every refresh recomputes the open bucket too.
    settle: timedelta | None = None
    # Native: the most one refresh computes, from where it starts (a multiple of the bucket,
    # more than the overlap); the next refresh goes on from there. A new rollup over a long
    # history, or a late write from long ago, is then caught up over several runs of the beat
    # task instead of one that reads it all inside the task's time limit. None: no limit.
    catch_up: timedelta | None = None
    # Created and kept only where the source is a native table: on TimescaleDB the migration
    # creates nothing, `is_native` is False and nothing refreshes or reads it there.
    native_only: bool = False

    def __post_init__(self) -> None:
        if self.catch_up is not None and (
            self.catch_up % self.bucket or self.catch_up <= self.overlap
        ):
            raise ValueError(
                f"{self.name}: catch_up must be a multiple of the bucket and exceed the overlap"
            )

    def query(self, bucket_expr: str, where: str = "") -> str:
        keys = ", ".join(self.key_columns)
        return (
            f"SELECT {bucket_expr} AS bucket, {keys}, {self.select} FROM {self.source} "
            f"{where} GROUP BY 1, {', '.join(str(i + 2) for i in range(len(self.key_columns)))}"
        )


ROLLUPS: dict[str, Rollup] = {}
# Rollup name → watermark names of readers that keep sums of its rows between reads (e.g. the
# SLO evaluation's sums of completed hours): a refresh marks them dirty from the oldest bucket
# it rewrote, as it marks the rollups built on it.
DEPENDENTS: dict[str, set[str]] = {}


def register(rollup: Rollup) -> Rollup:
    ROLLUPS[rollup.name] = rollup
    return rollup


def register_dependent(rollup_name: str, mark_name: str) -> None:
    """`mark_name`'s watermark row (created by its owner, `upto` = how far its kept sums reach)
    gets `dirty_since` lowered whenever a refresh of `rollup_name` rewrites a bucket before
    `upto`, in the refresh's transaction."""
    DEPENDENTS.setdefault(rollup_name, set()).add(mark_name)


def date_bin(rollup: Rollup) -> str:
    return (
        f"date_bin('{interval_sql(rollup.bucket)}'::interval, {rollup.time_column}, "
        "TIMESTAMPTZ '2000-01-01 00:00:00+00')"
    )


# --- creation, from migrations ------------------------------------------------------------


def create(
    schema_editor, rollup: Rollup, native_columns: str, *, partitioned: TimeSeriesTable
) -> None:
    """Create the target: a continuous aggregate, or a range-partitioned table with
    `native_columns` DDL whose partitions follow `partitioned`. A `native_only` rollup over a
    TimescaleDB source is not created at all."""
    if backend.table_backend_of(schema_editor.connection, rollup.source) == backend.TIMESCALE:
        if not rollup.native_only:
            create_continuous_aggregate(schema_editor, rollup)
        return
    keys = ", ".join(rollup.key_columns)
    schema_editor.execute(
        f"CREATE TABLE {rollup.name} (bucket timestamptz NOT NULL, {native_columns}, "
        f"PRIMARY KEY ({keys}, bucket)) PARTITION BY RANGE (bucket)"
    )
    schema_editor.execute(f"CREATE INDEX {rollup.name}_bucket_idx ON {rollup.name} (bucket)")
    now = datetime.now(UTC)
    partitions.ensure(
        partitioned,
        now - partitioned.partition,
        now + partitioned.partition * (partitioned.create_ahead + 1),
        using=schema_editor.connection,
    )


def create_continuous_aggregate(schema_editor, rollup: Rollup) -> None:
    bucket = f"time_bucket('{interval_sql(rollup.bucket)}'::interval, {rollup.time_column})"
    schema_editor.execute(
        f"CREATE MATERIALIZED VIEW {rollup.name} WITH (timescaledb.continuous, "
        f"timescaledb.materialized_only = false) AS {rollup.query(bucket)} WITH NO DATA"
    )
    schema_editor.execute(
        "SELECT add_continuous_aggregate_policy(%s, start_offset => %s::interval, "
        "end_offset => %s::interval, schedule_interval => %s::interval)",
        [
            rollup.name,
            interval_sql(refresh_window(rollup)),
            interval_sql(rollup.bucket),
            interval_sql(rollup.bucket),
        ],
    )


def complete_window(rollup: Rollup) -> timedelta | None:
    """How far back the source still holds every row of a bucket (None: no retention).
    Retention drops only chunks or partitions that end before now − retention, so every bucket
    starting after that is complete; one bucket is kept as a margin. Read from the registered
    source table, whose retention follows the settings of this process, not those of the
    migration that created the rollup."""
    source = TABLES.get(rollup.source)
    if source is None or source.retention is None:
        return None
    return source.retention - rollup.bucket


def refresh_window(rollup: Rollup) -> timedelta:
    """The continuous aggregate's refresh look-back: its late window, below `complete_window`
    (refreshing a range whose raw chunks were dropped would empty its buckets)."""
    complete = complete_window(rollup)
    return rollup.late_window if complete is None else min(rollup.late_window, complete)


def drop(schema_editor, rollup: Rollup) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [rollup.name])
        row = cursor.fetchone()
    if row and row[0] in ("v", "m"):  # a continuous aggregate is a view
        schema_editor.execute(f"DROP MATERIALIZED VIEW IF EXISTS {rollup.name} CASCADE")
    else:
        schema_editor.execute(f"DROP TABLE IF EXISTS {rollup.name}")


# --- native refresh, from a beat task -----------------------------------------------------


def is_native(rollup: Rollup) -> bool:
    """Whether the rollup is a native table kept by `refresh`. False for a continuous
    aggregate, and for a target that does not exist: a `native_only` rollup on TimescaleDB, or
    a new rollup whose migration has not run yet (code deployed first)."""
    return backend.table_backend_of(connection, rollup.name) == backend.NATIVE


def refresh(rollup: Rollup, *, now: datetime | None = None) -> int:
    """Recompute the buckets from the watermark (minus the overlap, or from the oldest late
    write) up to now, at most `catch_up` of them, and upsert them. Returns the number of rows
    written."""
    from noc.models import RollupWatermark

    now = now or datetime.now(UTC)
    started = time.perf_counter()
    with transaction.atomic():
        mark, _ = RollupWatermark.objects.select_for_update().get_or_create(
            name=rollup.name, defaults={"upto": _oldest_source_time(rollup) or now}
        )
        end = now if rollup.settle is None else _floor(now - rollup.settle, rollup.bucket)
        if end <= mark.upto and mark.dirty_since is None:
            return 0  # settled rollup: no bucket closed since the last refresh
        start = mark.upto - rollup.overlap
        if mark.dirty_since is not None:
            start = min(start, mark.dirty_since)
        complete = complete_window(rollup)
        if complete is not None:  # a bucket recomputed from partial rows would lose the rest
            start = max(start, now - complete)
        start = _floor(_within_retention(rollup, start, now), rollup.bucket)
        if rollup.catch_up is not None:
            end = min(end, start + rollup.catch_up)
        _ensure_partitions(rollup, start, now)
        written = _upsert(rollup, start, end)
        # Rollups built on this one must recompute what changed here, and so must readers
        # keeping sums of its rows.
        downstream = tuple(r.name for r in ROLLUPS.values() if r.source == rollup.name)
        if downstream:
            mark_dirty(downstream, start)
        dependents = tuple(sorted(DEPENDENTS.get(rollup.name, ())))
        if dependents:
            mark_dependents_dirty(dependents, start)
        # What is left before the watermark (a late write's range longer than `catch_up`, or
        # one in a bucket not settled yet) stays dirty, from where this refresh stopped.
        mark.dirty_since = end if end < mark.upto else None
        mark.upto = max(_floor(end, rollup.bucket), mark.upto)
        mark.refreshed_at = now
        mark.last_duration_ms = (time.perf_counter() - started) * 1000
        mark.save()
    return written


def _within_retention(rollup: Rollup, start: datetime, now: datetime) -> datetime:
    """Buckets older than the target's retention would only be dropped again: a late write
    from long ago (a service whose first due time was months back) does not rebuild them."""
    spec = TABLES.get(rollup.name)
    if spec is None or spec.retention is None:
        return start
    return max(start, now - spec.retention)


def _ensure_partitions(rollup: Rollup, start: datetime, now: datetime) -> None:
    """Maintenance keeps partitions from a day back to a week ahead; a late write or a first
    refresh over old history needs older ones. Only where the source has partitions, i.e.
    where rows can be: one late write months back adds one partition, not one per day since."""
    target, source = TABLES.get(rollup.name), TABLES.get(rollup.source)
    if target is None:
        return
    end = now + rollup.bucket
    if source is None:
        partitions.ensure(target, start, end)
        return
    for partition in partitions.existing(source):
        lower, upper = max(partition.start, start), min(partition.end, end)
        if lower < upper:
            partitions.ensure(target, lower, upper)


def _oldest_source_time(rollup: Rollup) -> datetime | None:
    """A new rollup starts from the oldest row it summarises (an indexed min())."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min({rollup.time_column}) FROM {rollup.source}")
        return cursor.fetchone()[0]


def _floor(moment: datetime, size: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // size) * size


def _upsert(rollup: Rollup, start: datetime, end: datetime) -> int:
    where = f"WHERE {rollup.time_column} >= %s AND {rollup.time_column} < %s"
    select = rollup.query(date_bin(rollup), where)
    columns = [c.rsplit(" AS ", 1)[-1].strip() for c in _split_select(rollup.select)]
    keys = ", ".join(rollup.key_columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
    sql = (
        f"INSERT INTO {rollup.name} (bucket, {keys}, {', '.join(columns)}) {select} "
        f"ON CONFLICT ({keys}, bucket) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [start, end])
        return cursor.rowcount


def _split_select(select: str) -> list[str]:
    """Split a SELECT list on top-level commas."""
    parts, depth, current = [], 0, []
    for char in select:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    return [p for p in (part.strip() for part in parts) if p]


def mark_dependents_dirty(names: tuple[str, ...], oldest: datetime) -> None:
    """Marks readers' kept sums dirty from `oldest` where they reach past it, always taking
    their watermark rows' locks. A reader summing afresh holds its row locked while it reads
    the rollup (and the coarser rollups' watermarks) and writes the row back clean: a refresh
    committing during that read, which mark_dirty would skip when the row is already dirty
    from before `oldest` (a first evaluation's, or an earlier late result's), or whose rewrite
    falls between the reader's old and new `upto`, then waits for the reader and marks the
    row after it (READ COMMITTED re-reads the row once the lock is released)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE noc_rollupwatermark SET dirty_since = CASE WHEN upto > %(oldest)s "
            "THEN least(coalesce(dirty_since, %(oldest)s), %(oldest)s) ELSE dirty_since END "
            "WHERE name = ANY(%(names)s)",
            {"oldest": oldest, "names": list(names)},
        )


def mark_dirty(rollup_names: tuple[str, ...], oldest: datetime) -> None:
    """Writers call this with the oldest time they inserted; cheap when nothing is late."""
    from noc.models import RollupWatermark

    for name in rollup_names:
        RollupWatermark.objects.filter(name=name, upto__gt=oldest).exclude(
            dirty_since__lte=oldest
        ).update(dirty_since=oldest)
