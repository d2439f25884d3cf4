"""The demo stack: the demo target's endpoints, the demo services fixture and backfill_demo."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from noc import demo_target
from noc.runner import Runner
from services.actions import Observation, check_results_record
from services.models import CheckResult, CheckRollup, Service

FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "020_services.json"


# --- the demo target --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target():
    server = demo_target.make_server(port=0)
    demo_target.serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def get(url: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_healthy_answers_ok(target):
    status, body = get(f"{target}/healthy")

    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_json_answers_a_version(target):
    status, body = get(f"{target}/json")

    assert (status, json.loads(body)) == (200, {"status": "ok", "version": "1.0"})


def test_down_answers_503(target):
    assert get(f"{target}/down")[0] == 503


def test_slow_answers_after_a_second_and_a_half(target):
    started = time.monotonic()
    status, _ = get(f"{target}/slow")

    assert status == 200
    assert time.monotonic() - started >= demo_target.SLOW_SECONDS


def test_flapping_follows_the_wall_clock(target):
    before = demo_target.flapping_is_up(time.time())
    status, _ = get(f"{target}/flapping")
    after = demo_target.flapping_is_up(time.time())

    if before == after:  # not across a flip
        assert status == (200 if before else 503)


def test_flapping_alternates_every_two_minutes():
    assert [demo_target.flapping_is_up(t) for t in (0, 119, 120, 239, 240)] == [
        True,
        True,
        False,
        False,
        True,
    ]


def test_unknown_paths_are_404_and_head_works(target):
    assert get(f"{target}/nope")[0] == 404
    assert get(f"{target}/healthy", method="HEAD") == (200, b"")


def test_a_burst_of_connections_waits_in_the_listen_queue():
    """A worker opens a connection per check, 20 and more at once after an outage. With
    socketserver's backlog of 5 the kernel dropped the SYNs beyond it and the client sent them
    again 1 s later, then 3 s: checks of a healthy target timed out at 2 s (the fault suite's
    target is this server class too). Nothing accepts here: the queue alone must hold them,
    each connection established by the kernel well within the first retransmission."""
    server = demo_target.make_server(port=0)  # bound and listening, not serving
    connections: list[socket.socket] = []
    try:
        for _ in range(100):
            connections.append(socket.create_connection(server.server_address, timeout=0.9))
    finally:
        for conn in connections:
            conn.close()
        server.server_close()
    assert len(connections) == 100


def test_the_module_runs_as_a_process_and_stops_on_sigterm():
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "noc.demo_target", "--port", str(port)],
        cwd=settings.BASE_DIR, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "listening on" in process.stdout.readline()
        assert get(f"http://127.0.0.1:{port}/healthy")[0] == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_make_run_starts_the_demo_target_on_noc_demo_port(settings):
    settings.NOC_DEMO_PORT = 8123

    children = {c.name: c.argv for c in Runner(host="127.0.0.1", port=8000).plan()}

    assert children["demo-target"][1:] == ["-m", "noc.demo_target", "--port", "8123"]


# --- the demo services fixture ----------------------------------------------------------------


def fixture_objects() -> list[dict]:
    return json.loads(FIXTURE.read_text())


def load_fixture() -> None:
    call_command("loaddata", str(FIXTURE), verbosity=0)


def test_the_fixture_names_every_field_so_reloading_keeps_ping_tokens():
    # loaddata fills an absent field with its default: a fresh uuid4 on every load.
    fields = {f.name for f in Service._meta.concrete_fields} - {"id"}
    for obj in fixture_objects():
        assert set(obj["fields"]) == fields, obj["pk"]


def test_every_fixture_service_passes_validation(db):
    load_fixture()

    services = list(Service.objects.filter(pk__in=[o["pk"] for o in fixture_objects()]))
    assert len(services) == len(fixture_objects())
    for service in services:
        service.full_clean()  # loaddata does not validate


def test_the_fixture_loads_twice_to_the_same_services(db):
    load_fixture()
    first = list(Service.objects.values_list("id", "ping_token", "url"))
    load_fixture()

    assert list(Service.objects.values_list("id", "ping_token", "url")) == first


def test_load_demo_runs_twice_with_the_services_fixture(db):
    call_command("load_demo", verbosity=0, stdout=io.StringIO())
    call_command("load_demo", verbosity=0, stdout=io.StringIO())

    assert Service.objects.filter(tags__contains=["demo"]).count() == len(fixture_objects())


def test_load_demo_points_the_demo_services_at_the_configured_ports(db, settings):
    settings.NOC_PORT, settings.NOC_DEMO_PORT = 9123, 9124
    settings.NOC_PUBLIC_URL = "http://noc.example.test:9123"

    call_command("load_demo", verbosity=0, stdout=io.StringIO())

    services = {s.id: s for s in Service.objects.all()}
    assert services["noc-web"].url == "http://127.0.0.1:9123/health/live"
    assert (services["noc-web-tcp"].host, services["noc-web-tcp"].port) == ("127.0.0.1", 9123)
    assert services["demo-healthy"].url == "http://127.0.0.1:9124/healthy"
    backup = services["demo-nightly-backup"]
    assert "curl -fsS http://noc.example.test:9123/ping/" in backup.description
    # Everything else is as the fixture has it.
    fixture = {o["pk"]: o["fields"] for o in fixture_objects()}
    assert services["demo-healthy"].name == fixture["demo-healthy"]["name"]


def test_scheduled_fixture_services_are_due_at_once(db):
    load_fixture()
    now = datetime.now(UTC)

    scheduled = Service.objects.exclude(kind="push")
    assert scheduled.exists()
    assert all(s.is_due(now) for s in scheduled)


# --- backfill_demo ----------------------------------------------------------------------------


def backfill(*args: str) -> str:
    out = io.StringIO()
    call_command("backfill_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT service_id, count(*) FROM services_checkresult GROUP BY 1")
        return dict(cursor.fetchall())


@pytest.fixture
def demo(db):
    load_fixture()


def test_backfill_writes_a_day_of_minutes_per_service(demo):
    backfill("--days", "1")

    rows = counts()
    every_minute = [s.id for s in Service.objects.exclude(kind="push")]
    assert {rows[sid] for sid in every_minute} == {1440}
    assert rows["demo-nightly-backup"] == 288  # its period is 5 minutes


def test_backfill_history_looks_like_the_demo(demo):
    backfill("--days", "1")

    def statuses(service_id: str) -> set[str]:
        results = CheckResult.objects.filter(service_id=service_id)
        return set(results.values_list("status", flat=True))

    assert statuses("demo-down") == {"down"}
    assert statuses("demo-flapping") == {"up", "down"}
    slow = CheckResult.objects.filter(service_id="demo-slow")
    assert slow.filter(status="degraded").count() > 1000
    healthy = CheckResult.objects.filter(service_id="demo-healthy", status="up")
    assert healthy.count() > 1300
    assert all(10 < r.response_time_ms < 1000 for r in healthy[:200])


def test_backfill_twice_adds_nothing_the_second_time(demo):
    until = datetime.now(UTC).isoformat()
    backfill("--days", "1", "--until", until)
    before = counts()

    out = backfill("--days", "1", "--until", until)

    assert counts() == before
    assert "0 rows added" in out


def test_a_later_backfill_adds_only_the_new_minutes(demo):
    until = datetime.now(UTC) - timedelta(minutes=10)
    backfill("--days", "1", "--until", until.isoformat())
    before = counts()

    backfill("--days", "1", "--until", (until + timedelta(minutes=5)).isoformat())

    assert counts()["demo-down"] == before["demo-down"] + 5


def test_backfill_refreshes_the_rollup(demo):
    backfill("--days", "1")

    buckets = CheckRollup.objects.filter(service_id="demo-down")
    assert buckets.count() >= 1439
    assert sum(b.n_down for b in buckets) == 1440
    assert CheckRollup.objects.filter(service_id="demo-slow", n_degraded__gt=0).exists()


def test_backfill_stops_where_real_results_begin(demo):
    live = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2, seconds=17)
    check_results_record(
        results=[Observation(service_id="demo-json", due=live, started_at=live, status="up")]
    )

    backfill("--days", "1")

    results = CheckResult.objects.filter(service_id="demo-json")
    assert not results.filter(time__gt=live).exists()
    assert results.count() < 1440


def test_backfill_of_given_services_only(demo):
    backfill("--days", "1", "--services", "demo-down,noc-web")

    assert set(counts()) == {"demo-down", "noc-web"}


def test_backfill_refuses_a_future_end(demo):
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    with pytest.raises(CommandError, match="future"):
        backfill("--days", "1", "--until", later)


def test_backfill_refuses_unknown_services(demo):
    with pytest.raises(CommandError, match="unknown service id"):
        backfill("--days", "1", "--services", "nope")
