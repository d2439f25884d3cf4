"""Writing spans: PostgreSQL's binary COPY into the daily partitions or chunks of
`observability_span`, idempotent for a batch sent twice (as metric points are: the first
attempt COPYs straight in inside a savepoint; a batch whose spans are already there is COPYed
into a temporary table and inserted with `ON CONFLICT DO NOTHING`)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import psycopg
from django.db import connection, transaction

from observability import storage
from observability.timeseries import SPANS
from observability.traces.records import SpanRecord

TABLE = SPANS.table
STAGING = "observability_span_staging"
COLUMNS = (
    "(trace_id, span_id, parent_span_id, name, kind, application_id, service, start_time, "
    "end_time, duration_us, status_code, status_message, attributes, events, links)"
)
FIELDS = 15
_len = struct.Struct(">i").pack
_int8 = struct.Struct(">iq").pack  # length 8, then the value
_EMPTY_OBJECT = _len(3) + b"\x01{}"  # jsonb's binary form: version 1, then the text
_EMPTY_LIST = _len(3) + b"\x01[]"
_FIELD_COUNT = struct.pack(">h", FIELDS)


def _text(value: str) -> bytes:
    data = value.encode() if value else b""
    return _len(len(data)) + data


def _jsonb(data: bytes | None, empty: bytes) -> bytes:
    return _len(len(data) + 1) + b"\x01" + data if data else empty


def copy_payload(records: Sequence[SpanRecord]) -> bytes:
    parts = [storage.HEADER]
    append = parts.append
    epoch = storage.PG_EPOCH_US
    for r in records:
        append(_FIELD_COUNT)
        append(_text(r.trace_id))
        append(_text(r.span_id))
        append(_text(r.parent_span_id))
        append(_text(r.name))
        append(_text(r.kind))
        append(_int8(8, r.application_id))
        append(_text(r.service))
        append(_int8(8, r.start_us - epoch))
        append(_int8(8, r.end_us - epoch))
        append(_int8(8, r.end_us - r.start_us))
        append(_text(r.status_code))
        append(_text(r.status_message))
        append(_jsonb(r.attributes, _EMPTY_OBJECT))
        append(_jsonb(r.events, _EMPTY_LIST))
        append(_jsonb(r.links, _EMPTY_LIST))
    append(storage.TRAILER)
    return b"".join(parts)


def ensure_partitions(records: Sequence[SpanRecord]) -> None:
    """The daily partitions the spans need (native backend); call before the transaction."""
    storage.ensure_days(SPANS, {r.start_us // storage.DAY_US for r in records})


def write_spans(records: Sequence[SpanRecord]) -> None:
    """COPY the spans in; call inside the ingest transaction, after `ensure_partitions`."""
    if not records:
        return
    payload = copy_payload(records)
    try:
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.copy(f"COPY {TABLE} {COLUMNS} FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(payload)
    except psycopg.errors.UniqueViolation:
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (LIKE {TABLE}) ON COMMIT DELETE ROWS"
            )
            with cursor.copy(f"COPY {STAGING} {COLUMNS} FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(payload)
            cursor.execute(
                f"INSERT INTO {TABLE} {COLUMNS} SELECT {COLUMNS[1:-1]} FROM {STAGING} "
                "ON CONFLICT (trace_id, span_id, start_time) DO NOTHING"
            )
            cursor.execute(f"TRUNCATE {STAGING}")
