"""Fixtures of the services tests: a real local HTTP server and service factories, and helpers
that prepare time-series data on either backend (native partitions or TimescaleDB)."""

from __future__ import annotations

import http.server
import threading
import time
from datetime import datetime

import pytest
from django.db import connection

from noc import demo_target
from noc.timeseries import backend, partitions
from noc.timeseries.registry import TimeSeriesTable
from noc.timeseries.rollups import ROLLUPS, is_native, refresh
from services import actions


def ensure_partitions(spec: TimeSeriesTable, start: datetime, end: datetime) -> None:
    """Native: create the partitions covering [start, end). A hypertable (or a continuous
    aggregate) makes its chunks on insert, so there is nothing to do."""
    if backend.table_backend_of(connection, spec.table) == backend.NATIVE:
        partitions.ensure(spec, start, end)


def refresh_rollups(*names: str, now: datetime | None = None) -> None:
    """Bring the rollups (all, or those named) up to date, in registration order: the minute
    rollup before the hourly one built on it.

    Native: the incremental refresh the beat task runs, from each rollup's watermark.
    TimescaleDB: nothing. refresh_continuous_aggregate() cannot run inside a transaction block,
    which is where a test runs, and would leave materialized rows behind a transactional test;
    the continuous aggregates are real-time (materialized_only = false), so reads already
    aggregate the raw rows not yet materialized."""
    for rollup in ROLLUPS.values():
        if (not names or rollup.name in names) and is_native(rollup):
            refresh(rollup, now=now)


class TargetHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.rsplit("/", 1)[-1] or 1))
        status = 503 if self.path.startswith("/down") else 200
        body = b'{"status": "ok"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def target():
    """Base URL of a local HTTP server: /ok (200), /down (503), /slow/<seconds>. The demo
    target's server class: its listen queue holds the bursts of connections a worker opens
    (the fault suite's fleet, 20 and more at once after an outage)."""
    server = demo_target.Server(("127.0.0.1", 0), TargetHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def make_service(db, target):
    counter = iter(range(1, 100_000))

    def make(path: str = "/ok", **fields):
        n = next(counter)
        fields.setdefault("id", f"svc-{n}")
        fields.setdefault("name", f"Service {n}")
        fields.setdefault("url", f"{target}{path}")
        fields.setdefault("interval_seconds", 60)
        fields.setdefault("timeout_seconds", 2)
        return actions.service_create(actor=None, **fields)

    return make
