"""Writing points: PostgreSQL's binary COPY format packed with one `struct` call a row, the
native partitions a batch needs, and the idempotent fallback for a batch sent twice.

The first attempt COPYs straight into the points table inside a savepoint. A batch whose
points are already there (a client retrying after a lost answer) breaks the primary key; it is
then COPYed into a temporary table and inserted with `ON CONFLICT DO NOTHING`, so a retry
stores nothing twice and costs the slow path only when it happens.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import psycopg
from django.db import connection, transaction

from noc.timeseries import backend, partitions
from noc.timeseries.registry import TimeSeriesTable

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds: binary timestamptz zero
DAY_US = 86_400_000_000
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_row = struct.Struct(">hiiiqid").pack  # 3 fields: int4 series_id, timestamptz, float8

Rows = Iterable[tuple[int, dict[int, float]]]  # (series id, {time_us: value})


def copy_payload(rows: Rows) -> bytes:
    parts = [HEADER]
    append = parts.append
    for series_id, points in rows:
        for time_us, value in points.items():
            append(_row(3, 4, series_id, 8, time_us - PG_EPOCH_US, 8, value))
    append(TRAILER)
    return b"".join(parts)


def write_points(table: str, payload: bytes) -> None:
    """COPY the payload into `table`; idempotent for rows already there. Call inside the
    ingest transaction."""
    columns = "(series_id, time, value)"
    try:
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} {columns} FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(payload)
    except psycopg.errors.UniqueViolation:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS observability_points_staging "
                "(series_id integer, time timestamptz, value double precision) "
                "ON COMMIT DELETE ROWS"
            )
            with cursor.copy(
                f"COPY observability_points_staging {columns} FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.write(payload)
            cursor.execute(
                f"INSERT INTO {table} {columns} SELECT series_id, time, value "
                "FROM observability_points_staging ON CONFLICT (series_id, time) DO NOTHING"
            )
            cursor.execute("TRUNCATE observability_points_staging")


# --- native partitions ------------------------------------------------------------------------

_native: dict[str, bool] = {}
_known_days: dict[str, set[int]] = {}


def _is_native(table: str) -> bool:
    key = f"{connection.settings_dict['NAME']}:{table}"
    if key not in _native:
        _native[key] = backend.table_backend_of(connection, table) == backend.NATIVE
    return _native[key]


def ensure_days(spec: TimeSeriesTable, days: Iterable[int]) -> None:
    """Make sure a daily partition exists for each day (Unix microseconds // DAY_US) of a
    batch. Maintenance keeps them from yesterday to a week ahead; a late point within the
    retention may need an older one. Runs before the ingest transaction, so creating one
    never holds the table's lock while a batch is written. TimescaleDB creates its chunks.
    What is seen is remembered once no transaction can undo it (at its commit)."""
    if not _is_native(spec.table):
        return
    known = _known_days.setdefault(f"{connection.settings_dict['NAME']}:{spec.table}", set())
    missing = [day for day in set(days) if day not in known]
    if not missing:
        return
    seen = {_day_of(p.start) for p in partitions.existing(spec) if p.end - p.start == ONE_DAY}
    for day in missing:
        if day not in seen:
            start = datetime.fromtimestamp(day * 86_400, UTC)
            partitions.ensure(spec, start, start + ONE_DAY)
            seen.add(day)
    if connection.in_atomic_block:
        # A partition this transaction made is kept only if it commits: remember it then. (Log
        # writes call this inside their transaction: it was asking the catalog every batch.)
        transaction.on_commit(lambda: known.update(seen))
    else:
        known.update(seen)


def forget_partitions() -> None:
    """Forget what was seen (tests that drop partitions)."""
    _known_days.clear()
    _native.clear()


ONE_DAY = timedelta(days=1)


def _day_of(moment: datetime) -> int:
    return int(moment.timestamp()) // 86_400
