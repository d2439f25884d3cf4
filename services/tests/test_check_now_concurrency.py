"""Concurrent check-now calls on one service: every result written is counted and answered."""

from __future__ import annotations

import http.server
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from django.db import connection
from rest_framework.test import APIClient

from noc.demo_target import Server as BurstServer  # a listen queue for bursts, not 5
from services.models import CheckResult, Service

CALLS = 16


class SlowFirstFailing(http.server.BaseHTTPRequestHandler):
    """503 after a delay that shrinks with each arrival: the checks that started first finish
    last, so results reach the database in the opposite order of their start."""

    arrivals = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            type(self).arrivals += 1
            order = type(self).arrivals
        threading.Event().wait(max(CALLS - order, 0) * 0.02)
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def failing_target():
    server = BurstServer(("127.0.0.1", 0), SlowFirstFailing)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_check_now_calls_each_answer_their_row_and_all_count(
    make_service, operator_user, failing_target
):
    make_service(id="web", url=failing_target, allow_private=True, failure_threshold=1000)
    start = threading.Barrier(CALLS)

    def check_now() -> tuple[int, dict]:
        client = APIClient()
        client.force_authenticate(operator_user)
        try:
            start.wait()
            response = client.post("/api/services/web/check-now/")
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(CALLS) as pool:
        answers = list(pool.map(lambda _: check_now(), range(CALLS)))

    assert [code for code, _ in answers] == [200] * CALLS, answers
    assert {body["status"] for _, body in answers} == {"down"}
    rows = set(CheckResult.objects.filter(service_id="web").values_list("time", flat=True))
    answered = {datetime.fromisoformat(body["time"]) for _, body in answers}
    assert len(rows) == CALLS
    assert answered == rows  # one answer per row, none for a row not written
    service = Service.objects.get(id="web")
    assert service.consecutive_failures == CALLS
    assert service.last_slot == max(rows)
