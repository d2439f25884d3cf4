"""Metric series ids for a batch: a per-process cache, then one lookup statement, then (only
when a batch brings new series) their creation under the application's series limit.

A series is identified by a fingerprint (128 bits of BLAKE2b over the name and the sorted
labels) unique per application. Ids enter the cache only after the transaction that found or
created them committed, and series rows are never deleted except with their application, so a
cached id is always a real series.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # (name, sorted label items)

CACHE_LIMIT = 200_000
LOCK_CLASS = 728_011  # pg advisory lock class: creation of one application's series
_cache: dict[tuple[int, SeriesKey], int] = {}


@dataclass(frozen=True)
class NewSeries:
    key: SeriesKey
    kind: str
    unit: str


def _storable(text: str) -> str:
    return text.encode("utf-8", "ignore").decode().replace("\x00", "")


def fingerprint(key: SeriesKey) -> uuid.UUID:
    name, labels = key
    digest = hashlib.blake2b(digest_size=16)
    digest.update(name.encode())
    for label, value in labels:
        digest.update(b"\x00" + label.encode() + b"\x00" + value.encode())
    return uuid.UUID(bytes=digest.digest())


def cached(application_id: int, key: SeriesKey) -> int | None:
    return _cache.get((application_id, key))


def remember(application_id: int, ids: dict[SeriesKey, int]) -> None:
    """Call after commit only."""
    if len(_cache) + len(ids) > CACHE_LIMIT:
        _cache.clear()
    for key, series_id in ids.items():
        _cache[(application_id, key)] = series_id


def forget_all() -> None:
    _cache.clear()


def _lookup(application_id: int, prints: dict[uuid.UUID, SeriesKey]) -> dict[SeriesKey, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT fingerprint, id FROM observability_metricseries "
            "WHERE application_id = %s AND fingerprint = ANY(%s::uuid[])",
            [application_id, list(prints)],
        )
        return {prints[fp]: series_id for fp, series_id in cursor.fetchall()}


def _create(
    application_id: int, wanted: list[NewSeries], max_series: int
) -> tuple[dict[SeriesKey, int], int]:
    """Insert what the application's series limit leaves room for, in the order given.
    Creators of one application queue on an advisory lock, so two batches cannot both take
    the last free places."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, application_id])
        cursor.execute(
            """
            WITH input AS (
                SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::jsonb[], %s::varchar[],
                                     %s::varchar[]) WITH ORDINALITY
                    AS i(fingerprint, name, labels, kind, unit, ord)
            ), room AS (
                SELECT greatest(%s - count(*), 0) AS n FROM observability_metricseries
                WHERE application_id = %s
            ), fresh AS (
                SELECT i.* FROM input i WHERE NOT EXISTS (
                    SELECT 1 FROM observability_metricseries s
                    WHERE s.application_id = %s AND s.fingerprint = i.fingerprint)
                ORDER BY ord LIMIT (SELECT n FROM room)
            ), created AS (
                INSERT INTO observability_metricseries
                    (application_id, fingerprint, name, labels, kind, unit, created_at)
                SELECT %s, fingerprint, name, labels, kind, unit, now() FROM fresh
                ON CONFLICT (application_id, fingerprint) DO NOTHING
                RETURNING fingerprint, id
            )
            SELECT fingerprint, id, true FROM created
            UNION ALL
            SELECT s.fingerprint, s.id, false FROM observability_metricseries s
            JOIN input i ON s.application_id = %s AND s.fingerprint = i.fingerprint
            """,
            [
                [fingerprint(s.key) for s in wanted],
                [s.key[0] for s in wanted],
                [json.dumps(dict(s.key[1])) for s in wanted],
                [s.kind for s in wanted],
                [_storable(s.unit)[:64] for s in wanted],
                max_series,
                application_id,
                application_id,
                application_id,
                application_id,
            ],
        )
        rows = cursor.fetchall()
    by_print = {fingerprint(s.key): s.key for s in wanted}
    ids = {by_print[fp]: series_id for fp, series_id, _new in rows}
    return ids, sum(1 for *_, new in rows if new)


def resolve(
    application_id: int, wanted: Iterable[NewSeries], max_series: int
) -> tuple[dict[SeriesKey, int], int]:
    """Ids of the series in `wanted` (cache misses only): existing ones, then new ones while the
    application has room. Returns (ids found or created, number created); a key missing from
    the ids was refused by the series limit. Call inside the ingest transaction."""
    wanted = list(wanted)
    prints = {fingerprint(s.key): s.key for s in wanted}
    ids = _lookup(application_id, prints)
    missing = [s for s in wanted if s.key not in ids]
    if not missing:
        return ids, 0
    created_ids, created = _create(application_id, missing, max_series)
    ids.update(created_ids)
    return ids, created
