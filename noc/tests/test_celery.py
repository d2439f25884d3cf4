"""A task goes through a real worker process and its result comes back."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from noc.celery import JOB_QUEUES, SCHEDULED_QUEUES, app
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
    assert names == set(SCHEDULED_QUEUES + JOB_QUEUES)
    assert SCHEDULED_QUEUES == ("dispatch", "checks", "collectors")
    assert JOB_QUEUES == ("slo", "notifications", "ingest", "default")
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.broker_transport_options["visibility_timeout"] >= 3600


def test_no_late_acknowledged_task_outlives_the_visibility_timeout():
    """Redis delivers an unacknowledged message again after the visibility timeout: a
    late-acknowledged task still running by then would be run a second time (every hour).
    Every such task is killed before it; the longer ones are acknowledged when they start."""
    app.loader.import_default_modules()  # every app's tasks, as the worker registers them
    timeout = app.conf.broker_transport_options["visibility_timeout"]
    tasks = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert "noc.timeseries_index_build" in tasks
    late = {name: task.time_limit for name, task in tasks.items() if task.acks_late}
    assert late, "the app acknowledges late by default"
    too_long = {name: limit for name, limit in late.items() if not limit or limit >= timeout}
    assert not too_long, f"late-acknowledged tasks that may outlive {timeout} s: {too_long}"


def test_the_index_build_is_acknowledged_when_it_starts_and_queued_on_default():
    """Hours longer than the visibility timeout: acknowledged early, and a run lost with its
    worker is not re-delivered (the hourly maintenance task schedules the day again)."""
    from noc.tasks import INDEX_BUILD_SOFT_LIMIT, timeseries_index_build

    timeout = app.conf.broker_transport_options["visibility_timeout"]
    assert timeseries_index_build.time_limit > INDEX_BUILD_SOFT_LIMIT > timeout
    assert timeseries_index_build.acks_late is False
    assert timeseries_index_build.reject_on_worker_lost is False
    queue = app.amqp.router.route({}, timeseries_index_build.name)["queue"].name
    assert queue == "default"


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
