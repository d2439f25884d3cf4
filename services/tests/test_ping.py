"""Push pings: /ping/<token> records success, /fail a failure, /start times the job."""

from __future__ import annotations

import time
import uuid

import pytest
from django.test import Client

from services.models import CheckResult, Service

pytestmark = pytest.mark.django_db


@pytest.fixture
def push(make_service) -> Service:
    return make_service(id="backup", kind="push", url="")


def results(service: Service) -> list[CheckResult]:
    return list(CheckResult.objects.filter(service_id=service.id).order_by("time"))


def test_a_ping_records_success(client, push):
    response = client.get(f"/ping/{push.ping_token}")
    assert response.status_code == 200
    assert response.content == b"OK"
    assert response["Content-Type"].startswith("text/plain")
    [result] = results(push)
    assert (result.status, result.error, result.response_time_ms) == ("up", "", None)
    push.refresh_from_db()
    assert push.status == "up"
    assert push.last_ping_at is not None


def test_a_fail_ping_records_a_failure(client, push):
    assert client.get(f"/ping/{push.ping_token}/fail").status_code == 200
    [result] = results(push)
    assert result.status == "down"
    assert "failure" in result.error
    push.refresh_from_db()
    assert (push.status, push.consecutive_failures) == ("down", 1)


def test_start_then_success_measures_the_job_duration(client, push):
    assert client.get(f"/ping/{push.ping_token}/start").content == b"OK"
    assert results(push) == []  # a start is not a result
    time.sleep(0.15)
    client.get(f"/ping/{push.ping_token}")
    [result] = results(push)
    assert 150 <= result.response_time_ms < 5000
    push.refresh_from_db()
    assert push.last_start_at is None


def test_the_first_200_characters_of_a_post_body_are_kept(push):
    # A cron wrapper posts its log; CSRF does not apply to token URLs.
    client = Client(enforce_csrf_checks=True)
    body = "backup finished: 12 GB ✓ " + "x" * 500
    response = client.post(f"/ping/{push.ping_token}/fail", body, content_type="text/plain")
    assert response.status_code == 200
    [result] = results(push)
    assert result.details["body"] == body[:200]


def test_nul_characters_in_a_body_are_dropped(client, push):
    # PostgreSQL text and jsonb cannot store NUL: the ping must still be recorded.
    response = client.post(f"/ping/{push.ping_token}", b"ok\x00done", content_type="text/plain")
    assert response.status_code == 200
    [result] = results(push)
    assert result.details["body"] == "okdone"


def test_an_unknown_token_is_a_404(client, push):
    response = client.get(f"/ping/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.content == b"not found"
    assert results(push) == []


def test_the_token_of_a_scheduled_service_is_not_a_ping_url(client, make_service):
    service = make_service(id="web")
    assert client.get(f"/ping/{service.ping_token}").status_code == 404
    assert not CheckResult.objects.filter(service_id="web").exists()


def test_a_malformed_token_is_a_404(client):
    assert client.get("/ping/not-a-uuid").status_code == 404


def test_other_methods_are_refused(client, push):
    assert client.put(f"/ping/{push.ping_token}").status_code == 405
    assert results(push) == []


def test_a_disabled_service_still_records_pings(client, make_service):
    paused = make_service(id="paused-job", kind="push", url="", enabled=False)
    assert client.get(f"/ping/{paused.ping_token}").status_code == 200
    assert len(results(paused)) == 1
    paused.refresh_from_db()
    assert paused.status == "paused"


def test_a_ping_needs_a_bounded_number_of_queries(client, push, django_assert_max_num_queries):
    # The handler is benchmarked: no session, user or serializer work on this path.
    with django_assert_max_num_queries(16):
        assert client.get(f"/ping/{push.ping_token}").status_code == 200
