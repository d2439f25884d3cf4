"""Ingestion counters for /metrics: items stored by signal (metric points, log lines, spans),
items rejected by signal and reason, and requests refused whole by signal and error code.

They are kept in one Redis hash (under the cache's key prefix), so every web worker and Celery
process adds to the same numbers and a scrape reads them all with one HGETALL, whichever
process answers it. A Redis that fails is left alone for 10 seconds: ingestion never waits on
its counters, which then miss what was ingested meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from django.core.cache import cache

logger = logging.getLogger(__name__)

METRICS, LOGS, SPANS = "metrics", "logs", "spans"
SIGNALS = (METRICS, LOGS, SPANS)
PAUSE_AFTER_FAILURE = 10.0
_paused_until = 0.0


def _key() -> str:
    return cache.make_key("observability:ingest-counters")


def _client():
    """The cache's Redis client, made once per cache backend: Django's `get_client` builds a
    client object a call (its connection pool is shared), a third of what counting costs."""
    global _made_for, _made
    backend = cache._cache
    if _made_for is not backend:
        _made_for, _made = backend, backend.get_client(write=True)
    return _made


_made_for = _made = None


def count(signal: str, *, accepted: int = 0, rejections: Mapping[str, int] | None = None) -> None:
    """Add one request's outcome: items stored and items rejected by reason."""
    fields = {f"accepted|{signal}": accepted} if accepted else {}
    for reason, n in (rejections or {}).items():
        if n:
            fields[f"rejected|{signal}|{reason}"] = n
    _add(fields)


def refused(signal: str, code: str) -> None:
    """A request refused whole (its error code: body_too_large, invalid, …)."""
    _add({f"refused|{signal}|{code}": 1})


def _add(fields: dict[str, int]) -> None:
    global _paused_until
    if not fields or time.monotonic() < _paused_until:
        return
    try:
        pipe = _client().pipeline(transaction=False)
        key = _key()
        for field, n in fields.items():
            pipe.hincrby(key, field, n)
        pipe.execute()
    except Exception:
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
        logger.warning("ingest counters: Redis unavailable; not counted for 10 s", exc_info=True)


def read() -> dict[str, int]:
    """{field: value}; empty when Redis does not answer (the scrape goes on without them)."""
    global _paused_until
    if time.monotonic() < _paused_until:
        return {}
    try:
        raw = _client().hgetall(_key())
    except Exception:
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
        logger.warning("ingest counters: Redis unavailable at scrape", exc_info=True)
        return {}
    return {k.decode(): int(v) for k, v in raw.items()}
