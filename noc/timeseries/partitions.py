"""Native range partitions: named <table>_pYYYYMMDD[HH], created ahead, dropped for retention."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from noc.timeseries.registry import TABLES, PartitionIndex, TimeSeriesTable


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime
    end: datetime


def floor(moment: datetime, size: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // size) * size


def partition_name(spec: TimeSeriesTable, start: datetime) -> str:
    fmt = "%Y%m%d" if spec.partition >= timedelta(days=1) else "%Y%m%d%H"
    return f"{spec.table}_p{start.astimezone(UTC).strftime(fmt)}"


def existing(spec: TimeSeriesTable, using=connection) -> list[Partition]:
    sql = """
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = %s AND pg_table_is_visible(p.oid)
    """
    with using.cursor() as cursor:
        cursor.execute(sql, [spec.table])
        rows = cursor.fetchall()
    return sorted((_parse(name, bound) for name, bound in rows), key=lambda p: p.start)


def _parse(name: str, bound: str) -> Partition:
    # "FOR VALUES FROM ('2026-11-23 00:00:00+00') TO ('2026-11-24 00:00:00+00')"
    start, end = (part.split("'")[1] for part in bound.split(" TO "))
    return Partition(name, datetime.fromisoformat(start), datetime.fromisoformat(end))


def ensure(spec: TimeSeriesTable, start: datetime, end: datetime, using=connection) -> list[str]:
    """Create every missing partition covering [start, end). Safe to run concurrently."""
    have = {p.name for p in existing(spec, using)}
    created = []
    moment = floor(start, spec.partition)
    while moment < end:
        name, upper = partition_name(spec, moment), moment + spec.partition
        if name not in have:
            with transaction.atomic(using=using.alias), using.cursor() as cursor:
                # A lock per table serialises creators: IF NOT EXISTS alone races on the catalog.
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [spec.table])
                cursor.execute(
                    f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{spec.table}" '
                    f"FOR VALUES FROM ('{moment.isoformat()}') TO ('{upper.isoformat()}')"
                )
            created.append(name)
        moment = upper
    return created


def ensure_ahead(spec: TimeSeriesTable, now: datetime | None = None) -> list[str]:
    now = now or datetime.now(UTC)
    return ensure(spec, now - spec.partition, now + spec.partition * (spec.create_ahead + 1))


def drop_expired(spec: TimeSeriesTable, now: datetime | None = None) -> list[str]:
    """Drop partitions whose whole range is older than the retention period."""
    if spec.retention is None:
        return []
    cutoff = (now or datetime.now(UTC)) - spec.retention
    dropped = []
    for partition in existing(spec):
        if partition.end <= cutoff:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP TABLE IF EXISTS "{partition.name}"')
            dropped.append(partition.name)
    return dropped


# --- indexes kept per partition ------------------------------------------------------------------


def index_name(partition: Partition, index: PartitionIndex) -> str:
    return f"{partition.name}_{index.suffix}"


def wants_index(partition: Partition, index: PartitionIndex, now: datetime) -> bool:
    return index.on == "all" or (index.on == "closed" and partition.end <= now)


def keep_indexes(spec: TimeSeriesTable, now: datetime | None = None, using=connection,
                 schedule: Callable[[str, str, str], object] | None = None,
                 ) -> dict[str, list[str]]:  # fmt: skip
    """Build each partition index where its policy wants it and drop it where not. Outside a
    transaction both are CONCURRENTLY (writes to the partition go on). With `schedule` (the
    maintenance task), each build still to make is handed to it as (table, partition, index
    suffix) — one task a build, with a time limit sized for a big day — instead of being made
    here (migrations and the benchmark build inline), newest day first: one build runs at a
    time (build_partition_index), and yesterday's index is the one searches want most. A drop
    whose index a build holds is left for the next run."""
    now = now or datetime.now(UTC)
    done: dict[str, list[str]] = {"built": [], "scheduled": [], "dropped": []}
    for index in spec.partition_indexes:
        if index.extension and not _has_extension(index.extension, using):
            continue
        present = _indexes_present(spec, index, using)
        for partition in reversed(existing(spec, using)):
            name = index_name(partition, index)
            if wants_index(partition, index, now):
                if present.get(name) is True:
                    continue
                if schedule is not None:
                    schedule(spec.table, partition.name, index.suffix)
                    done["scheduled"].append(name)
                elif build_index(spec, partition, index, using) == "built":
                    done["built"].append(name)
            elif name in present:
                with _index_lock(name, using) as locked:
                    if locked:
                        _drop_index(name, using)
                        done["dropped"].append(name)
    return done


def build_partition_index(table: str, partition_name: str, suffix: str,
                          now: datetime | None = None, using=connection) -> str:  # fmt: skip
    """Build one partition's index if its policy still wants it: the body of the task the
    maintenance task schedules per build. Returns "built", "present" (valid already), "busy"
    (another run is building an index: one at a time in the whole installation, so a backlog
    of days never holds more than one of the jobs worker's processes for hours), "not wanted"
    or "gone" (no such partition any more)."""
    spec = TABLES[table]
    index = next(i for i in spec.partition_indexes if i.suffix == suffix)
    partition = next((p for p in existing(spec, using) if p.name == partition_name), None)
    if partition is None:
        return "gone"
    if not wants_index(partition, index, now or datetime.now(UTC)):
        return "not wanted"
    with _builds_lock(using) as mine:
        if not mine:
            return "busy"
        return build_index(spec, partition, index, using)


def build_index(spec: TimeSeriesTable, partition: Partition, index: PartitionIndex,
                using=connection) -> str:  # fmt: skip
    """Build a partition's index once, however many runs try at the same time: a run holds an
    advisory lock on the index's name for its whole build (session-level, so a run killed
    mid-way releases it with its connection) and another run answers "busy" at once. Under
    the lock, an index found invalid is what a stopped build left (time limit, worker killed,
    server restarted; a build in progress would hold the lock): it is dropped and made again."""
    name = index_name(partition, index)
    with _index_lock(name, using) as locked:
        if not locked:
            return "busy"
        valid = _indexes_present(spec, index, using).get(name)
        if valid:
            return "present"
        if valid is not None:
            _drop_index(name, using)
        _build_index(name, partition, index, using)
        return "built"


def _index_lock(name: str, using) -> AbstractContextManager[bool]:
    """Whether this session got the lock of the index `name` (not waiting for it)."""
    return _try_lock(using, INDEX_LOCK_SPACE, name)


def _builds_lock(using) -> AbstractContextManager[bool]:
    """Whether this session got the one scheduled build's lock (not waiting for it)."""
    return _try_lock(using, BUILDS_LOCK_SPACE)


@contextmanager
def _try_lock(using, space: int, name: str | None = None) -> Iterator[bool]:
    """Whether this session got the advisory lock (space, hashtext(name)), or (space, 0)
    without a name, not waiting for it; session-level, so a run killed mid-way releases it
    with its connection."""
    key, params = ("hashtext(%s)", [space, name]) if name is not None else ("0", [space])
    with using.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock(%s, {key})", params)
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            with using.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock(%s, {key})", params)


INDEX_LOCK_SPACE = 7_401  # the first key of partition-index advisory locks
BUILDS_LOCK_SPACE = 7_402  # (this, 0): the lock of the one scheduled build running


def _concurrently(using) -> str:
    return "" if using.in_atomic_block else " CONCURRENTLY"


def _build_index(name: str, partition: Partition, index: PartitionIndex, using) -> None:
    with using.cursor() as cursor:
        cursor.execute(
            f'CREATE INDEX{_concurrently(using)} IF NOT EXISTS "{name}" '
            f'ON "{partition.name}" USING {index.method}'
        )


def _drop_index(name: str, using) -> None:
    with using.cursor() as cursor:
        cursor.execute(f'DROP INDEX{_concurrently(using)} IF EXISTS "{name}"')


def _indexes_present(spec: TimeSeriesTable, index: PartitionIndex, using) -> dict[str, bool]:
    """The partition indexes of this kind that exist, by name: whether each is valid."""
    with using.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid FROM pg_inherits h "
            "JOIN pg_class p ON p.oid = h.inhparent "
            "JOIN pg_index i ON i.indrelid = h.inhrelid "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE p.relname = %s AND pg_table_is_visible(p.oid)",
            [spec.table],
        )
        rows = cursor.fetchall()
    prefix, suffix = f"{spec.table}_p", f"_{index.suffix}"
    return {name: valid for name, valid in rows if name.startswith(prefix)
            and name.endswith(suffix)}  # fmt: skip


def _has_extension(name: str, using) -> bool:
    with using.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = %s", [name])
        return cursor.fetchone() is not None
