"""Fixtures of the collectors tests: real local servers (a Prometheus exposition served by
prometheus_client itself, a JSON API whose answers a test sets) and collector factories."""

from __future__ import annotations

import http.server
import json
import threading
from collections import deque
from datetime import datetime

import pytest
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from collectors import actions, execution
from collectors.models import CollectorRun
from noc.demo_target import Server as BurstServer  # a listen queue for bursts, not 5


@pytest.fixture
def exposition():
    """URL of a prometheus_client exposition with a counter, a gauge and a histogram."""
    registry = CollectorRegistry()
    jobs = Counter("jobs_processed", "Jobs done", ["queue"], registry=registry)
    jobs.labels(queue="mail").inc(3)
    jobs.labels(queue="sms").inc(5)
    Gauge("temperature_celsius", "Room temperature", registry=registry).set(21.5)
    latency = Histogram("request_seconds", "Latency", buckets=(0.1, 1.0), registry=registry)
    latency.observe(0.05)
    latency.observe(0.5)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class JsonApi:
    """Answers GET with the next queued (status, body, content type), or the last one again;
    remembers the Authorization headers and paths it saw."""

    def __init__(self) -> None:
        self.answers: deque[tuple[int, bytes, str]] = deque()
        self.last: tuple[int, bytes, str] = (200, b"{}", "application/json")
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.url = ""

    def answer(self, body, status: int = 200, content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers.append((status, raw, content_type))

    def next(self, path: str, authorization: str) -> tuple[int, bytes, str]:
        with self.lock:
            self.seen.append((path, authorization))
            if self.answers:
                self.last = self.answers.popleft()
            return self.last


@pytest.fixture
def json_api():
    api = JsonApi()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body, content_type = api.next(self.path, self.headers.get("Authorization", ""))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = BurstServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_collector(db, application):
    counter = iter(range(1, 100_000))

    def make(**fields):
        fields.setdefault("name", f"collector-{next(counter)}")
        fields.setdefault("kind", "prometheus")
        fields.setdefault("application", application)
        fields.setdefault("timeout_seconds", 3)
        fields.setdefault("allow_private", True)
        return actions.collector_create(actor=None, **fields)

    return make


def execute(run: CollectorRun, at: datetime | None = None) -> CollectorRun:
    """Claim the run's slot at `at` (now by default) as the dispatcher does, execute it in this
    process as a worker does, and return the run as recorded."""
    at = at or timezone.now()
    CollectorRun.objects.filter(pk=run.pk).update(next_run_at=at)
    slots = [s for s in actions.collector_runs_claim_due(now=at) if s.run_id == run.pk]
    assert slots, "the run was not due"
    execution.run_slots(slots)
    run.refresh_from_db()
    return run
