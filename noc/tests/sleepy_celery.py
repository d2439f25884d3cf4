"""The project's Celery app plus one task that only sleeps: a stand-in for a long job (a cold
SLO evaluation, an index build) in tests that start real workers with `-A noc.tests.sleepy_celery`.
"""

from __future__ import annotations

import time
from pathlib import Path

from noc.celery import app

__all__ = ["app", "sleep", "touch"]


@app.task(name="tests.sleep")
def sleep(seconds: float) -> None:
    time.sleep(seconds)


@app.task(name="tests.touch")
def touch(path: str) -> None:
    """Creates `path`: proves a worker consumes the queue it was sent to."""
    Path(path).touch()
