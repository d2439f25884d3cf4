"""`make run`'s two Celery workers, for real: while every process of the jobs worker is held by
a long job, the dispatcher and the check batches still run on time in the scheduled work's
worker. (With one pool for every queue, the dispatcher waited behind the long jobs.)"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from noc.beat import ENTRIES
from noc.celery import app
from noc.runner import Runner
from noc.settings import BASE_DIR
from noc.tests.faultstack import free_port, start_redis
from services import actions
from services.models import CheckResult, Service
from services.tests.test_worker import worker_database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LONG_JOB_SECONDS = 60


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of the test's own: the workers consume the real queue names."""
    port = free_port()
    server = start_redis(port, tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    server.kill()
    server.wait(timeout=10)


@pytest.fixture
def workers(private_redis, settings):
    """The runner's two workers as `make run` starts them (their queues from its plan), small."""
    settings.NOC_WORKER_CONCURRENCY = 2
    settings.NOC_JOBS_CONCURRENCY = 1
    plan = {c.name: c.argv for c in Runner(host="127.0.0.1", port=8000).plan()}
    env = os.environ | {
        "NOC_EMBEDDED": "off", "DATABASE_URL": worker_database_url(), "REDIS_URL": private_redis,
    }  # fmt: skip
    processes = []
    for name in ("worker", "jobs"):
        argv = list(plan[name])
        argv[argv.index("-A") + 1] = "noc.tests.sleepy_celery"
        argv[argv.index("--loglevel") + 1] = "WARNING"
        processes.append(subprocess.Popen(argv, cwd=BASE_DIR, env=env, start_new_session=True))
    yield private_redis
    for process in processes:
        os.killpg(process.pid, signal.SIGKILL)  # the long jobs are not waited for
        process.wait(timeout=30)


def send(url: str, task: str, queue: str, args: list | None = None) -> None:
    with app.connection_for_write(url) as connection:
        app.send_task(task, args=args or [], queue=queue, connection=connection)


def wait_until_consumed(url: str, queue: str, tmp_path) -> None:
    path = tmp_path / f"{queue}.consumed"
    send(url, "tests.touch", queue, [str(path)])
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"no worker consumes {queue}"
        time.sleep(0.1)


def test_a_long_job_holding_every_jobs_process_never_delays_due_checks(target, workers, tmp_path):
    wait_until_consumed(workers, "dispatch", tmp_path)
    wait_until_consumed(workers, "default", tmp_path)
    services = [
        actions.service_create(actor=None, id=f"split-{i}", name=f"split {i}", url=f"{target}/ok")
        for i in range(20)
    ]
    # Every process of the jobs worker (and one more in its queue) held by a long job.
    for _ in range(2):
        send(workers, "tests.sleep", "default", [LONG_JOB_SECONDS])
    due = timezone.now() + timedelta(seconds=2)
    Service.objects.update(next_check_at=due)
    # Beat's entry names the queue the dispatcher is sent to; send it as beat would, each second.
    entry = next(e for e in ENTRIES.values() if e.task == "services.dispatch")
    deadline = time.monotonic() + 30
    while CheckResult.objects.count() < len(services):
        assert time.monotonic() < deadline, f"{CheckResult.objects.count()} of 20 recorded"
        send(workers, entry.task, entry.queue)
        time.sleep(1)
    lags = [(r.started_at - r.time).total_seconds() for r in CheckResult.objects.all()]
    assert max(lags) < 10, lags  # on time, not after the long jobs' 60 s
    assert all(r.status == "up" for r in CheckResult.objects.all())
