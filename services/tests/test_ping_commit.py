"""Pings through the ASGI front (noc.asgi): group commit for healthy services' successes, the
general path for everything else, and the same answers as the Django view."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from incidents.models import Incident
from noc.asgi import Front, django_application
from services import actions
from services.models import CheckResult, MaintenanceWindow, Service

pytestmark = pytest.mark.django_db(transaction=True)


async def call(
    front: Front, path: str, *, method: str = "GET", body: bytes = b"", host=b"testserver",
    headers: list[tuple[bytes, bytes]] = (),
):  # fmt: skip
    """One HTTP request through the ASGI app; returns (status, headers, body)."""
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", host), *headers], "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }  # fmt: skip
    await front(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), content


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture
def front():
    app = Front(django_application)
    yield app
    run(app.close())


def results(service: Service) -> list[CheckResult]:
    return list(CheckResult.objects.filter(service_id=service.id).order_by("time"))


def healthy(make_service, **fields) -> Service:
    service = make_service(kind="push", url="", **fields)
    at = timezone.now() - timedelta(minutes=5)
    actions.push_ping_record(token=service.ping_token, outcome="success", now=at)
    service.refresh_from_db()
    assert service.status == "up"
    return service


async def pings(front: Front, paths: list[str]) -> list[tuple]:
    try:
        return await asyncio.gather(*(call(front, p) for p in paths))
    finally:
        await front.committer.close()


def test_concurrent_success_pings_share_commits_and_each_is_recorded(front, make_service):
    services = [healthy(make_service) for _ in range(20)]
    paths = [f"/ping/{s.ping_token}" for s in services for _ in range(3)]
    answers = run(pings(front, paths))
    assert [a[0] for a in answers] == [200] * 60
    assert {a[2] for a in answers} == {b"OK"}
    assert front.committer.pings == 60
    assert front.committer.groups < 60  # grouped: fewer commits than pings
    for service in services:
        service.refresh_from_db()
        assert len(results(service)) == 4  # the first ping of healthy() and three more
        assert service.consecutive_successes == 4
        assert service.last_ping_at == service.last_slot == results(service)[-1].time


def test_an_uppercase_token_is_the_same_ping(front, make_service):
    service = healthy(make_service)
    status, _, _ = run(pings(front, [f"/ping/{str(service.ping_token).upper()}"]))[0]
    assert status == 200
    assert len(results(service)) == 2


def test_fail_start_unknown_and_first_pings_take_the_general_path(front, make_service):
    new = make_service(kind="push", url="", failure_threshold=1)
    scheduled = make_service(id="web")
    answers = run(
        pings(
            front,
            [
                f"/ping/{new.ping_token}/start",
                f"/ping/{uuid.uuid4()}",
                f"/ping/{scheduled.ping_token}",
            ],
        )
    )
    assert [a[0] for a in answers] == [200, 404, 404]
    assert answers[1][2] == b"not found"
    assert results(new) == []
    new.refresh_from_db()
    assert new.last_start_at is not None
    status, _, _ = run(pings(front, [f"/ping/{new.ping_token}"]))[0]  # unknown → up: general
    assert status == 200
    assert front.committer.pings == 0
    status, _, _ = run(pings(front, [f"/ping/{new.ping_token}/fail"]))[0]
    assert status == 200
    new.refresh_from_db()
    assert new.status == "down"
    assert Incident.objects.filter(service=new).count() == 1


def test_a_recovery_through_the_front_resolves_the_incident(front, make_service):
    service = healthy(make_service, failure_threshold=1)
    run(pings(front, [f"/ping/{service.ping_token}/fail"]))
    assert Incident.objects.get(service=service).status == "new"
    run(pings(front, [f"/ping/{service.ping_token}"]))
    assert Incident.objects.get(service=service).status == "resolved"
    service.refresh_from_db()
    assert service.status == "up"


def test_maintenance_keeps_pings_on_the_general_path(front, make_service):
    service = healthy(make_service, failure_threshold=1)
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        name="m", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)
    )
    window.services.add(service)
    run(pings(front, [f"/ping/{service.ping_token}/fail"]))
    service.refresh_from_db()
    assert service.status == "maintenance"
    assert not Incident.objects.filter(service=service).exists()
    assert results(service)[-1].in_maintenance


def test_a_posted_body_is_kept_like_the_view_keeps_it(front, make_service):
    service = healthy(make_service)
    body = "done ✓ \x00" + "x" * 500

    async def post():
        try:
            return await call(
                front, f"/ping/{service.ping_token}", method="POST", body=body.encode()
            )
        finally:
            await front.committer.close()

    assert run(post())[0] == 200
    assert results(service)[-1].details == {"body": body[:200].replace("\x00", "")}


def test_the_answer_carries_the_headers_django_would_add(front, make_service):
    service = healthy(make_service)
    status, headers, content = run(pings(front, [f"/ping/{service.ping_token}"]))[0]
    assert (status, content) == (200, b"OK")
    assert headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert len(headers[b"x-request-id"]) == 32


def test_a_well_formed_request_id_is_echoed(front, make_service):
    service = healthy(make_service)

    async def ping(request_id: bytes):
        try:
            return await call(
                front, f"/ping/{service.ping_token}", headers=[(b"x-request-id", request_id)]
            )
        finally:
            await front.committer.close()

    assert run(ping(b"job-42"))[1][b"x-request-id"] == b"job-42"
    assert len(run(ping(b"bad id\x01"))[1][b"x-request-id"]) == 32


def test_what_the_front_does_not_handle_plainly_goes_to_django(front, make_service):
    service = healthy(make_service)

    async def requests():
        try:
            return [
                await call(front, f"/ping/{service.ping_token}", method="PUT"),
                await call(front, f"/ping/{service.ping_token}", host=b"evil.example"),
                await call(front, "/ping/not-a-uuid"),
                await call(front, "/health/live"),
            ]
        finally:
            await front.committer.close()

    put, bad_host, malformed, health = run(requests())
    assert put[0] == 405
    assert bad_host[0] == 400
    assert malformed[0] == 404
    assert health[0] == 200
    assert len(results(service)) == 1


def test_a_statement_that_fails_sends_its_group_the_general_way(front, make_service):
    # A result already at the ping's time makes the group's INSERT fail: every ping of the
    # group is then recorded (or refused) by the general path, none is lost or doubled.
    service = healthy(make_service)
    at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO services_checkresult (service_id, time, status, error, details,"
            " in_maintenance) VALUES (%s, %s, 'up', '', '{}', false)",
            [service.id, at],
        )

    async def ping():
        try:
            return await front.committer.record_success(service.ping_token, at, "")
        finally:
            await front.committer.close()

    assert run(ping()) is None  # the caller takes the general path
