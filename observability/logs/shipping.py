"""LOG_SHIP=1: the project's own log records go to the log store too, as application `noc`,
each with its request id, logger and (when there is one) exception.

The handler only queues (a bounded buffer: a logging call never waits on a database); a
daemon thread ships the queue every few seconds on its own database connection, never inside
a request's transaction. Records of the storage path itself (the database, the Elasticsearch
client, this module) are not shipped, so shipping cannot feed itself.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque

FLUSH_SECONDS = 2.0
BATCH = 1000
BUFFER = 20_000
SKIPPED_LOGGERS = ("observability.logs", "elasticsearch", "elastic_transport", "urllib3",
                   "django.db", "celery.worker.strategy")  # fmt: skip
LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error",
          "CRITICAL": "fatal"}  # fmt: skip
APPLICATION = "noc"


class ShippingHandler(logging.Handler):
    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.queue: deque[dict] = deque(maxlen=BUFFER)
        self._thread: threading.Thread | None = None
        self._shipping = threading.local()
        self._wake = threading.Event()
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(SKIPPED_LOGGERS) or getattr(self._shipping, "active", False):
            return
        try:
            self.queue.append(self.line(record))
        except Exception:  # a logging call never fails because of shipping
            self.handleError(record)
            return
        if self._thread is None:
            self._start()
        if len(self.queue) >= BATCH:
            self._wake.set()

    def line(self, record: logging.LogRecord) -> dict:
        attributes = {"logger": record.name, "request_id": getattr(record, "request_id", "-")}
        if record.exc_info:
            attributes["exception"] = logging.Formatter().formatException(record.exc_info)
        return {
            "time_us": to_us_epoch(record.created),
            "level": LEVELS.get(record.levelname, "info"),
            "message": record.getMessage()[:8192],
            "service": record.processName or "",
            "attributes": attributes,
        }

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-shipping", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()
            _close_connection()

    def flush(self) -> None:
        """Ship what is queued, in this thread (tests call it directly)."""
        from django.apps import apps

        if not self.queue or not apps.ready:
            return
        self._shipping.active = True
        try:
            while self.queue:
                lines = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
                ship(lines)
        except Exception as exc:  # the store is away: these lines are the project's own
            logging.getLogger("observability.logs.shipping").warning(
                "Own log lines not shipped: %s", exc
            )
        finally:
            self._shipping.active = False


def to_us_epoch(created: float) -> int:
    return int(created * 1_000_000)


def ship(lines: list[dict]) -> None:
    from observability import actions
    from observability.logs.records import LogRecord, new_uid

    application = actions.application_for_own_logs()
    host = _hostname()
    records = [
        LogRecord(
            uid=new_uid(line["time_us"]), time_us=line["time_us"],
            application_id=application.pk, level=line["level"],
            message=line["message"].replace("\x00", ""), service=line["service"], host=host,
            attributes=line["attributes"], application=application.slug,
        )
        for line in lines
    ]  # fmt: skip
    actions.log_records_write(records=records)


def _hostname() -> str:
    import socket

    return socket.gethostname()[:255]


def _close_connection() -> None:
    from django.db import connection

    connection.close()
