"""Fixtures of the services tests: a real local HTTP server and service factories."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from services import actions


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
    """Base URL of a local HTTP server: /ok (200), /down (503), /slow/<seconds>."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TargetHandler)
    server.daemon_threads = True
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
