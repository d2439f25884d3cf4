"""Log formatting: plain text or one JSON object a line, each carrying the request id."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from noc.request_context import current

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current.get().request_id
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class RepeatedOutageFilter(logging.Filter):
    """Celery logs the same line at every attempt while a dependency is away (the worker's
    'Cannot connect' every few seconds, beat's failed publication or database error at every
    tick): the first goes through, the repeats are dropped until the outage ends (a line saying
    so, or QUIET_SECONDS without a repeat), so an outage reads as one line down, one line back."""

    QUIET_SECONDS = 30.0
    REPEATS = (
        ("celery.worker.consumer", "consumer: Cannot connect to"),
        ("celery.beat", "Message Error:"),
        ("celery.beat", "beat: Connection error"),
        ("django_celery_beat.schedulers", "Database gave error"),
        ("django_celery_beat.schedulers", "Database error while sync"),
    )
    ENDS = (("celery.worker.consumer", "Connected to"),)

    def __init__(self) -> None:
        super().__init__()
        self.last_seen: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(("celery", "django_celery_beat")):
            return True
        message = record.getMessage()
        for family, prefix in self.ENDS:
            if record.name.startswith(family) and message.startswith(prefix):
                self.last_seen = {k: v for k, v in self.last_seen.items() if k[0] != family}
                return True
        for pattern in self.REPEATS:
            if record.name.startswith(pattern[0]) and message.startswith(pattern[1]):
                previous = self.last_seen.get(pattern)
                self.last_seen[pattern] = record.created
                return previous is None or record.created - previous > self.QUIET_SECONDS
        return True
