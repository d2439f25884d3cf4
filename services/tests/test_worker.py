"""Through a real Celery worker: dispatch → worker → results; a worker killed mid-batch loses
no slot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from noc.settings import BASE_DIR
from services import actions, tasks
from services.models import CheckClaim, CheckResult, Service

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def worker_database_url() -> str:
    s = connection.settings_dict
    host = s["HOST"] or ""
    if host.startswith("/"):
        return f"postgresql://{s['USER']}:{s['PASSWORD'] or ''}@/{s['NAME']}?host={host}"
    return f"postgresql://{s['USER']}:{s['PASSWORD'] or ''}@{host}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(queue: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "noc", "worker", "-Q", queue, "-P", "solo",
            "-n", f"{queue}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
            "--loglevel", "WARNING",
        ],
        cwd=BASE_DIR,
        env=os.environ | {"NOC_EMBEDDED": "off", "DATABASE_URL": worker_database_url()},
    )  # fmt: skip


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture
def checks_queue(monkeypatch):
    """A private queue, so leftovers of other runs in the shared Redis cannot interfere."""
    private = f"checks-test-{uuid.uuid4().hex[:8]}"
    original = tasks.run_checks.apply_async

    def apply_async(args=None, kwargs=None, queue=None, **options):
        return original(args=args, kwargs=kwargs, queue=private, **options)

    monkeypatch.setattr(tasks.run_checks, "apply_async", apply_async)
    return private


def test_dispatch_hands_due_checks_to_a_worker_which_records_them(target, checks_queue):
    services = [
        actions.service_create(actor=None, id=f"w-{i}", name=f"w{i}", url=f"{target}/ok")
        for i in range(5)
    ]
    Service.objects.update(next_check_at=timezone.now())
    worker = start_worker(checks_queue)
    try:
        assert tasks.dispatch() == 5
        wait_for(lambda: CheckResult.objects.count() == 5)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert not CheckClaim.objects.exists()
    assert {s.status for s in Service.objects.filter(pk__in=[s.pk for s in services])} == {"up"}


def test_a_worker_killed_mid_batch_loses_no_slot(target, checks_queue):
    service = actions.service_create(
        actor=None, id="slowpoke", name="slow", url=f"{target}/slow/4", timeout_seconds=10,
        interval_seconds=300,  # its lease (70 s) ends before its next slot: it gets a retry
    )  # fmt: skip
    Service.objects.filter(pk=service.pk).update(next_check_at=timezone.now())
    worker = start_worker(checks_queue)
    try:
        tasks.dispatch()
        time.sleep(3)  # the worker took the batch and waits on the slow endpoint
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert not CheckResult.objects.filter(service_id="slowpoke").exists()
    claim = CheckClaim.objects.get(service_id="slowpoke")

    # The lease runs out; the next dispatch hands the slot to a live worker.
    Service.objects.filter(pk=service.pk).update(next_check_at=timezone.now() + timedelta(hours=1))
    slots = actions.checks_reclaim_expired(now=claim.lease_until + timedelta(seconds=1))
    assert [s.due for s in slots] == [claim.slot]
    worker = start_worker(checks_queue)
    try:
        tasks.run_checks.apply_async(args=[[s.as_message() for s in slots]], queue=checks_queue)
        wait_for(lambda: CheckResult.objects.filter(service_id="slowpoke").exists())
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    result = CheckResult.objects.get(service_id="slowpoke")
    assert result.time == claim.slot
    assert result.status == "up"
    assert not CheckClaim.objects.exists()
