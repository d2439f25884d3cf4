"""The time-series tables the apps declare, and the policies the layer applies to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class PartitionIndex:
    """An index the maintenance task keeps on each native partition instead of the table: on
    the closed partitions only (`on="closed"`, those whose range has passed, so rows written
    into the current one do not pay for it), on all of them (`"all"`), or on none (`"off"`:
    the task drops it where it was built). Named `<partition>_<suffix>`."""

    suffix: str
    method: str  # what follows USING, e.g. "gin (message gin_trgm_ops)"
    on: str = "closed"
    extension: str = ""  # kept only where this extension is installed


@dataclass(frozen=True)
class TimeSeriesTable:
    table: str
    time_column: str = "time"
    partition: timedelta = timedelta(days=1)  # native partition size / hypertable chunk size
    retention: timedelta | None = None  # older partitions or chunks are dropped
    compress_after: timedelta | None = None  # timescale only
    segment_by: str = ""  # timescale compression segmentby column
    create_ahead: int = 7  # native: partitions created ahead of now
    # Rollups that read this table: refreshed natively by a beat task, continuous aggregates
    # on timescale.
    rollups: tuple[str, ...] = field(default_factory=tuple)
    partition_indexes: tuple[PartitionIndex, ...] = ()  # native only


TABLES: dict[str, TimeSeriesTable] = {}


def register(table: TimeSeriesTable) -> TimeSeriesTable:
    TABLES[table.table] = table
    return table
