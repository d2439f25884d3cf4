"""The project's Celery app with every task's run written down, for `bench/checks.py
--task-log`: `celery -A bench.task_timing worker …` runs the same worker, and each process
appends "start end pid task" lines (Unix times) to $NOC_BENCH_TASK_LOG. Which tasks held the
pool's processes, and when, explains a start-lag tail that CPU figures do not."""

from __future__ import annotations

import os
import time

from celery import signals

from noc.celery import app

__all__ = ["app"]

_started: dict[str, float] = {}


@signals.task_prerun.connect
def _prerun(task_id=None, **kwargs) -> None:
    _started[task_id] = time.time()


@signals.task_postrun.connect
def _postrun(task_id=None, task=None, **kwargs) -> None:
    start = _started.pop(task_id, None)
    if start is None:
        return
    with open(os.environ["NOC_BENCH_TASK_LOG"], "a") as out:
        out.write(f"{start:.6f} {time.time():.6f} {os.getpid()} {task.name}\n")
