"""The one-statement path for success pings of healthy push services, and when it steps aside."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from incidents.models import Incident
from services import actions
from services.models import CheckResult, MaintenanceWindow, Service


def healthy_push(make_service):
    service = make_service(kind="push", url="", interval_seconds=60, failure_threshold=1)
    start = timezone.now() - timedelta(minutes=5)
    actions.push_ping_record(token=service.ping_token, outcome="success", now=start)
    service.refresh_from_db()
    assert service.status == "up"
    return service, start


def test_a_success_ping_to_a_healthy_service_is_recorded_in_one_statement(
    make_service, django_assert_max_num_queries
):
    service, start = healthy_push(make_service)
    at = start + timedelta(seconds=60)
    with django_assert_max_num_queries(4):  # savepoint, SET LOCAL, the statement, release
        assert actions._push_success_fast(token=service.ping_token, now=at, body="ok") == service.id
    service.refresh_from_db()
    assert (service.last_ping_at, service.last_slot, service.consecutive_successes) == (at, at, 2)
    result = CheckResult.objects.get(service_id=service.id, time=at)
    assert (result.status, result.details) == ("up", {"body": "ok"})


def test_the_fast_path_measures_the_job_duration_from_its_start_ping(make_service):
    service, start = healthy_push(make_service)
    actions.push_ping_record(
        token=service.ping_token, outcome="start", now=start + timedelta(seconds=50)
    )
    actions.push_ping_record(
        token=service.ping_token, outcome="success", now=start + timedelta(seconds=53)
    )
    assert (
        CheckResult.objects.get(
            service_id=service.id, time=start + timedelta(seconds=53)
        ).response_time_ms
        == 3000
    )


def test_a_recovery_takes_the_general_path_and_resolves_the_incident(make_service):
    service, start = healthy_push(make_service)
    actions.push_ping_record(
        token=service.ping_token, outcome="fail", now=start + timedelta(seconds=10)
    )
    assert Incident.objects.get(service=service).status == "new"
    assert (
        actions._push_success_fast(
            token=service.ping_token, now=start + timedelta(seconds=20), body=""
        )
        is None
    )
    actions.push_ping_record(
        token=service.ping_token, outcome="success", now=start + timedelta(seconds=20)
    )
    assert Incident.objects.get(service=service).status == "resolved"


def test_a_maintenance_window_sends_pings_the_general_way(make_service):
    service, start = healthy_push(make_service)
    window = MaintenanceWindow.objects.create(name="m", cron="0 0 3 * * *", duration_minutes=30)
    window.services.add(service)
    assert (
        actions._push_success_fast(
            token=service.ping_token, now=start + timedelta(seconds=30), body=""
        )
        is None
    )


def test_a_duplicate_time_falls_back_without_an_error(make_service):
    service, start = healthy_push(make_service)
    Service.objects.filter(pk=service.pk).update(last_slot=start - timedelta(seconds=1))
    assert actions._push_success_fast(token=service.ping_token, now=start, body="") is None
    assert (
        actions.push_ping_record(token=service.ping_token, outcome="success", now=start)
        == service.id
    )
    assert CheckResult.objects.filter(service_id=service.id, time=start).count() == 1
