"""A small terminal progress bar for long management commands (import, backfill).

On a terminal it redraws one line in place (bar, count/total, rate); elsewhere (logs, CI,
pipes) it stays silent until the end and prints one count line, so logs hold no \\r noise.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

BAR_WIDTH = 30
REDRAW_SECONDS = 0.1  # a redraw per item would cost more than small items do


class Progress:
    def __init__(
        self,
        total: int,
        *,
        label: str = "",
        unit: str = "items",
        stream: TextIO | None = None,
        quiet: bool = False,
    ) -> None:
        # Django's OutputWrapper adds a newline to every write; draw on the stream it wraps.
        stream = stream if stream is not None else sys.stderr
        self.stream: TextIO = getattr(stream, "_out", stream)
        self.total = max(total, 0)
        self.label = label
        self.unit = unit
        self.count = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._finished = quiet  # a quiet bar counts but never draws
        self.tty = _is_tty(self.stream)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()

    def advance(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        due = now - self._drawn_at >= REDRAW_SECONDS or self.count >= self.total
        if self.tty and not self._finished and due:
            self._drawn_at = now
            self._write("\r" + self.line(now, bar=True))

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        now = time.monotonic()
        if self.tty:
            self._write("\r" + self.line(now, bar=True) + "\n")
        else:
            self._write(self.line(now, bar=False) + "\n")

    def rate(self, now: float) -> float:
        elapsed = now - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    def line(self, now: float, *, bar: bool) -> str:
        prefix = f"{self.label} " if self.label else ""
        counts = f"{self.count}/{self.total} {self.unit}"
        speed = f"{self.rate(now):.1f}/s"
        if not bar:
            return f"{prefix}{counts} in {now - self.started:.1f}s ({speed})"
        done = int(BAR_WIDTH * min(self.count / self.total, 1.0)) if self.total else BAR_WIDTH
        drawn = "#" * done + "-" * (BAR_WIDTH - done)
        return f"{prefix}[{drawn}] {counts} {speed}"

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
