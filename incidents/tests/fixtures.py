"""Fixtures of the incidents app that other apps' tests use too: a real webhook receiver."""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass
from email.message import Message

import pytest

from noc.demo_target import Server as BurstServer  # a listen queue for bursts, not 5

# --- a real receiver ----------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: Message
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """A local HTTP server that records every POST and can be told to fail the next N."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.failures = 0
        self.failure_status = 500
        self._lock = threading.Lock()
        self._server = BurstServer(("127.0.0.1", 0), _ReceiverHandler)
        self._server.daemon_threads = True
        self._server.receiver = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def fail(self, times: int, status: int = 500) -> None:
        self.failures, self.failure_status = times, status

    def record(self, request: Received) -> int:
        with self._lock:
            self.requests.append(request)
            if self.failures > 0:
                self.failures -= 1
                return self.failure_status
            return 200

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _ReceiverHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = self.server.receiver.record(Received(self.path, self.headers, body))
        reply = b"ok" if status < 400 else b"receiver exploded"
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()
