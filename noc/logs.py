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


class BrokerRetryFilter(logging.Filter):
    """A worker that lost its broker logs 'Cannot connect … trying again' at every attempt (every
    few seconds for as long as the outage lasts): the first goes through, the repeats are
    dropped until it is connected again, so an outage reads as one line down, one line back."""

    def __init__(self) -> None:
        super().__init__()
        self.retrying = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("celery.worker.consumer"):
            return True
        message = record.getMessage()
        if message.startswith("Connected to"):
            self.retrying = False
        elif message.startswith("consumer: Cannot connect to"):
            if self.retrying:
                return False
            self.retrying = True
        return True
