"""A dependency outage as one process sees it: logged when it starts and when it ends, not on
every attempt in between (the dispatcher tries every second)."""

from __future__ import annotations

import logging
import time

# What a vanished PostgreSQL raises; anything else (a bug) is left to raise as usual.
from django.db import InterfaceError, OperationalError

CONNECTION_ERRORS = (OperationalError, InterfaceError)


class Outage:
    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self.logger = logger
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            self.logger.warning(
                "%s unavailable (%s: %s); retrying, quietly until it is back",
                self.what,
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
            )

    def ok(self) -> None:
        if self.since is not None:
            self.logger.warning("%s back after %.1fs", self.what, time.monotonic() - self.since)
            self.since = None
