"""A task goes through a real worker process and its result comes back."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from noc.celery import app
from noc.settings import BASE_DIR


@pytest.fixture
def worker():
    name = f"test-{uuid.uuid4().hex[:8]}"
    queue = f"test-{name}"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "noc", "worker", "-Q", queue, "-P", "solo",
            "-n", f"{name}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
            "--loglevel", "WARNING",
        ],
        cwd=BASE_DIR,
        env=os.environ | {"NOC_EMBEDDED": "off"},
    )  # fmt: skip
    yield queue
    process.terminate()
    process.wait(timeout=30)


def test_a_task_runs_in_a_real_worker_and_returns_its_result(worker):
    result = app.send_task("noc.ping", args=["hello"], queue=worker)
    assert result.get(timeout=60) == "hello"


def test_the_app_declares_every_queue_with_late_acks():
    names = {q.name for q in app.conf.task_queues}
    assert names == {"checks", "collectors", "slo", "notifications", "ingest", "default"}
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.broker_transport_options["visibility_timeout"] >= 3600


def test_worker_processes_relax_the_cyclic_collector():
    """A worker process freezes what start-up made and collects every 50,000 allocations
    (both the prefork children and a solo worker); it never lowers a higher threshold."""
    import gc

    from celery import signals

    from noc.celery import relax_collector

    for signal in (signals.worker_process_init, signals.worker_init):
        assert relax_collector in [ref() for _, ref in signal.receivers]
    saved = gc.get_threshold()
    try:
        gc.unfreeze()
        gc.set_threshold(700, 10, 10)
        relax_collector()
        assert gc.get_threshold() == (50_000, 20, 100)
        assert gc.get_freeze_count() > 0
        gc.set_threshold(90_000, 10, 500)
        relax_collector()
        assert gc.get_threshold() == (90_000, 20, 500)
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)
