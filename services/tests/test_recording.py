"""Recording results: last-check state, counters, maintenance, push pings and deadlines."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from services import actions
from services.actions import Observation
from services.execution import check_now
from services.models import CheckResult, MaintenanceWindow, Service
from services.signals import check_results_recorded


def observe(service, status, *, at, **extra):
    return actions.check_results_record(
        results=[Observation(service_id=service.id, due=at, started_at=at, status=status, **extra)]
    )


def test_consecutive_failures_and_successes_are_counted(make_service):
    service = make_service()
    start = timezone.now() - timedelta(minutes=10)
    for i, status in enumerate(["down", "down", "down", "up", "degraded"]):
        observe(
            service,
            status,
            at=start + timedelta(minutes=i),
            error="boom" if status == "down" else "",
        )
        service.refresh_from_db()
        if i == 2:
            assert (service.consecutive_failures, service.status) == (3, "down")
    assert service.consecutive_failures == 0
    assert service.consecutive_successes == 2
    assert service.status == "degraded"


def test_an_older_slot_arriving_late_is_kept_but_does_not_set_the_state(make_service):
    service = make_service()
    now = timezone.now()
    observe(service, "up", at=now)
    observe(service, "down", at=now - timedelta(minutes=5), error="late")
    service.refresh_from_db()
    assert service.status == "up"
    assert CheckResult.objects.filter(service_id=service.id).count() == 2


def test_during_maintenance_results_are_recorded_and_the_status_reads_maintenance(make_service):
    service = make_service()
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        name="db upgrade", starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(minutes=5)
    )
    window.services.add(service)
    observe(service, "down", at=now, error="503")
    service.refresh_from_db()
    assert service.status == "maintenance"
    result = CheckResult.objects.get(service_id=service.id)
    assert result.status == "down" and result.in_maintenance


def test_a_recurring_window_covers_only_its_duration(make_service):
    window = MaintenanceWindow(name="nightly", cron="0 0 3 * * *", duration_minutes=30)
    day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    assert window.covers(day + timedelta(hours=3, minutes=10))
    assert not window.covers(day + timedelta(hours=3, minutes=31))
    assert not window.covers(day + timedelta(hours=2, minutes=59))


def test_incident_evaluation_hears_each_new_result(make_service):
    service = make_service()
    heard = []

    def listener(sender, recorded, **kwargs):
        heard.extend((r.service.id, r.result.status, r.previous_status) for r in recorded)

    check_results_recorded.connect(listener)
    try:
        observe(service, "down", at=timezone.now())
    finally:
        check_results_recorded.disconnect(listener)
    assert heard == [(service.id, "down", "unknown")]


def test_a_batch_records_every_kind_of_value_in_one_statement(make_service):
    """Recording binds each column of a batch as one binary array: whole and fractional
    response times, missing status codes, errors with quotes and commas, a NUL-free body."""
    first, second, third = make_service(), make_service(), make_service()
    at = timezone.now().replace(microsecond=0)
    recorded = actions.check_results_record(
        results=[
            Observation(first.id, at, at, "up", response_time_ms=12, status_code=200),
            Observation(second.id, at, at, "down", 30.5, None, 'say "no", then {x}', {"a": [1]}),
            Observation(third.id, at, None, "missed", error="missed: nobody ran it"),
        ],
        claimed=False,
    )
    assert {r.service_id for r in recorded} == {first.id, second.id, third.id}
    rows = {r.service_id: r for r in CheckResult.objects.filter(time=at)}
    assert rows[first.id].response_time_ms == 12.0 and rows[first.id].status_code == 200
    assert rows[second.id].error == 'say "no", then {x}' and rows[second.id].details == {"a": [1]}
    assert rows[second.id].status_code is None and rows[third.id].started_at is None
    second.refresh_from_db()
    assert (second.status, second.last_response_time_ms, second.consecutive_failures) == (
        "down",
        30.5,
        1,
    )
    # The model instances are built on demand, with the state after the batch.
    assert recorded[1].service.consecutive_failures == 1
    assert recorded[1].result.error == 'say "no", then {x}'


def test_a_recurring_maintenance_window_is_read_for_the_batch(make_service):
    inside, outside = make_service(), make_service()
    at = timezone.now().replace(second=0, microsecond=0)
    window = MaintenanceWindow.objects.create(
        name="hourly", cron=f"0 {at.minute} * * * *", duration_minutes=1
    )
    window.services.add(inside)
    actions.check_results_record(
        results=[Observation(s.id, at, at, "down", error="503") for s in (inside, outside)],
        claimed=False,
    )
    statuses = dict(CheckResult.objects.filter(time=at).values_list("service_id", "in_maintenance"))
    assert statuses == {inside.id: True, outside.id: False}


def test_check_now_runs_against_a_real_server_and_records(make_service):
    service = make_service("/down")
    recorded = check_now(service)
    assert recorded.result.status == "down"
    assert recorded.result.status_code == 503
    service.refresh_from_db()
    assert service.last_status_code == 503


def test_push_pings_record_success_failure_and_duration(make_service):
    service = make_service(kind="push", url="", interval_seconds=300)
    start = timezone.now() - timedelta(seconds=10)
    actions.push_ping_record(token=service.ping_token, outcome="start", now=start)
    actions.push_ping_record(
        token=service.ping_token, outcome="success", now=start + timedelta(seconds=4)
    )
    result = CheckResult.objects.get(service_id=service.id)
    assert result.status == "up"
    assert result.response_time_ms == 4000
    actions.push_ping_record(
        token=service.ping_token, outcome="fail", now=start + timedelta(seconds=8)
    )
    service.refresh_from_db()
    assert service.status == "down"


def test_a_missing_ping_is_detected_once_per_deadline(make_service):
    service = make_service(kind="push", url="", interval_seconds=60, grace_seconds=30)
    pinged = timezone.now() - timedelta(minutes=5)
    actions.push_ping_record(token=service.ping_token, outcome="success", now=pinged)
    assert actions.push_overdue_record(now=pinged + timedelta(seconds=89)) == 0
    now = pinged + timedelta(seconds=100)
    assert actions.push_overdue_record(now=now) == 1
    assert actions.push_overdue_record(now=now) == 0
    down = CheckResult.objects.get(service_id=service.id, status="down")
    assert down.time == pinged + timedelta(seconds=90)
    assert Service.objects.get(pk=service.pk).status == "down"


def test_an_unknown_ping_token_is_refused(db):
    import uuid

    import pytest

    with pytest.raises(actions.UnknownPingToken):
        actions.push_ping_record(token=uuid.uuid4(), outcome="success")
