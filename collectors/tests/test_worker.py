"""Through a real Celery worker consuming a private collectors queue: start, status and stop;
a killed worker's run found dead; an execution whose worker is killed mid-way is handed to
another worker and stored once."""

from __future__ import annotations

import http.server
import signal
import threading
import time
import uuid

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from collectors import actions, tasks
from collectors.actions import HOST
from collectors.models import CollectorRun
from noc.demo_target import Server as BurstServer  # a listen queue for bursts, not 5
from observability.models import MetricPoint
from services.tests.test_worker import start_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def collectors_queue(monkeypatch):
    """A private queue, so leftovers of other runs in a shared Redis cannot interfere."""
    private = f"collectors-test-{uuid.uuid4().hex[:8]}"
    original = tasks.run_collectors.apply_async

    def apply_async(args=None, kwargs=None, queue=None, **options):
        return original(args=args, kwargs=kwargs, queue=private, **options)

    monkeypatch.setattr(tasks.run_collectors, "apply_async", apply_async)
    return private


@pytest.fixture
def operator(make_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user("operator"))
    return client


def run_of(pk: int) -> CollectorRun:
    return CollectorRun.objects.get(pk=pk)


def dispatching_until(condition, timeout: float = 60) -> None:
    """Play beat: dispatch every half second until `condition` holds."""

    def dispatched() -> bool:
        tasks.dispatch()
        return condition()

    wait_for(dispatched, timeout)


def test_start_status_and_stop_through_a_worker(
    operator, make_collector, exposition, collectors_queue
):
    collector = make_collector(url=exposition, interval_seconds=1, timeout_seconds=2)
    worker = start_worker(collectors_queue)
    try:
        started = operator.post("/api/collectors/start", {"collector": collector.pk}, format="json")
        assert started.status_code == 201
        run_id = started.json()["id"]
        dispatching_until(lambda: run_of(run_id).executions >= 3)
        [shown] = operator.get("/api/collectors/status").json()["collectors"]
        assert (shown["id"], shown["status"], shown["pid"], shown["host"]) == (
            run_id, "running", worker.pid, HOST,
        )  # fmt: skip
        assert shown["samples"] >= 3 * 9 and shown["last_error"] == ""

        stopped = operator.post("/api/collectors/stop", {"pid": worker.pid}, format="json")
        assert stopped.status_code == 200 and stopped.json()["stopped"] == [run_id]
        executions = run_of(run_id).executions
        for _ in range(4):
            assert tasks.dispatch() == 0
            time.sleep(0.5)
        assert run_of(run_id).executions == executions
        again = operator.post("/api/collectors/stop", {"pid": worker.pid}, format="json")
        assert again.status_code == 404
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_a_run_whose_worker_was_killed_is_found_dead(
    operator, make_collector, exposition, collectors_queue
):
    collector = make_collector(url=exposition, interval_seconds=1, timeout_seconds=1)
    worker = start_worker(collectors_queue)
    try:
        run = actions.collector_run_start(actor=None, collector=collector)
        dispatching_until(lambda: run_of(run.pk).pid == worker.pid)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    # No worker executes it any more: after interval + lease (1 + 1 + 15 s) + 2 s, the status
    # finds the worker's process gone on this host.
    killed_at = time.monotonic()

    def found_dead() -> bool:
        tasks.dispatch()
        shown = operator.get("/api/collectors/status").json()["collectors"]
        return shown[0]["status"] == "error"

    wait_for(found_dead, timeout=45)
    assert time.monotonic() - killed_at < 40
    dead = run_of(run.pk)
    assert f"worker process {worker.pid} on {HOST} is gone" in dead.last_error
    assert dead.stopped_at is not None


class SlowOnce(http.server.BaseHTTPRequestHandler):
    """The first request hangs 4 s (its worker is killed meanwhile); the next answers."""

    calls = 0

    def do_GET(self) -> None:
        type(self).calls += 1
        if type(self).calls == 1:
            time.sleep(4)
        body = b"up 1\nitems_total 5\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_an_execution_whose_worker_dies_is_run_by_another_worker_once(
    make_collector, collectors_queue
):
    server = BurstServer(("127.0.0.1", 0), SlowOnce)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    collector = make_collector(url=url, interval_seconds=300, timeout_seconds=5)
    first = start_worker(collectors_queue)
    try:
        run = actions.collector_run_start(actor=None, collector=collector)
        [slot] = actions.collector_runs_claim_due()
        tasks.run_collectors.apply_async(args=[[slot.as_message()]])
        wait_for(lambda: SlowOnce.calls == 1 and run_of(run.pk).pid == first.pid)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    second = start_worker(collectors_queue)
    try:
        # The lease (timeout 5 s + 15 s) runs out; the dispatcher hands the same slot out again.
        dispatching_until(lambda: run_of(run.pk).executions == 1, timeout=60)
        recorded = run_of(run.pk)
        assert (recorded.pid, recorded.samples, recorded.claimed_slot) == (second.pid, 2, None)
        assert MetricPoint.objects.count() == 2
        assert list(MetricPoint.objects.values_list("time", flat=True).distinct()) == [slot.due]
        assert recorded.next_run_at > timezone.now()  # its next slot is still ahead
    finally:
        second.terminate()
        second.wait(timeout=30)
        server.shutdown()
