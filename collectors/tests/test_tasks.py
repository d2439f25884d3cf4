"""The collectors' Celery wiring: beat entries, and the workers that consume the queue."""

from __future__ import annotations

from pathlib import Path

import yaml

from collectors import tasks
from noc.beat import ENTRIES
from noc.runner import Runner

BASE_DIR = Path(__file__).resolve().parents[2]


def test_beat_dispatches_every_second_and_cleans_up_hourly():
    by_task = {entry.task: entry for entry in ENTRIES.values()}
    assert by_task["collectors.dispatch"].every_seconds == 1
    assert by_task["collectors.mark_dead"].every_seconds == 30
    assert by_task["collectors.cleanup"].every_seconds == 3600
    assert tasks.QUEUE == "collectors"
    # The dispatcher runs in the scheduled work's pool, never behind a long job.
    assert by_task["collectors.dispatch"].queue == "dispatch"


def test_the_runners_worker_and_composes_worker_consume_the_collectors_queue():
    [worker] = [c for c in Runner(host="127.0.0.1", port=8000).plan() if c.name == "worker"]
    queues = worker.argv[worker.argv.index("-Q") + 1].split(",")
    assert "collectors" in queues
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    command = compose["services"]["worker"]["command"]
    assert "collectors" in command[command.index("-Q") + 1].split(",")
