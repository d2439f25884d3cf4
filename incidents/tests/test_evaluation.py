"""Automatic open and resolve as results are recorded; flapping; maintenance; the race."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from incidents import actions
from incidents.models import Incident
from services import actions as service_actions
from services.actions import Observation
from services.models import CheckResult, MaintenanceWindow


def feed(service, statuses, *, start=None, step=timedelta(minutes=1)):
    start = start or timezone.now() - step * len(statuses)
    for i, status in enumerate(statuses):
        at = start + step * i
        down = status == "down"
        service_actions.check_results_record(
            results=[
                Observation(
                    service_id=service.id, due=at, started_at=at, status=status,
                    error="HTTP 503" if down else "", status_code=503 if down else 200,
                )
            ]
        )  # fmt: skip
    return start


def test_an_incident_opens_after_the_configured_consecutive_failures(make_service):
    service = make_service(failure_threshold=3)
    start = feed(service, ["up", "down", "down"])
    assert not Incident.objects.exists()
    feed(service, ["down"], start=start + timedelta(minutes=3))
    incident = Incident.objects.get(service=service)
    assert incident.source == "check"
    assert incident.severity == "high"
    assert incident.impact_started_at == start + timedelta(minutes=1)  # first failing check
    opened = incident.events.get(kind="opened")
    assert opened.data["check"]["status_code"] == 503


def test_more_failures_do_not_open_a_second_incident(make_service):
    service = make_service(failure_threshold=1)
    feed(service, ["down"] * 5)
    incident = Incident.objects.get(service=service)
    assert incident.failed_checks == 4


def test_recovery_resolves_after_the_configured_successes_with_evidence(make_service):
    service = make_service(failure_threshold=1, success_threshold=2)
    start = feed(service, ["down", "up"])
    assert Incident.objects.get(service=service).status == "new"
    feed(service, ["up"], start=start + timedelta(minutes=2))
    incident = Incident.objects.get(service=service)
    assert incident.status == "resolved"
    assert incident.resolved_by is None
    resolved = incident.events.get(kind="resolved")
    assert resolved.data["automatic"] is True
    assert resolved.data["check"]["status"] == "up"


def test_a_failure_soon_after_resolution_reopens_the_same_incident(make_service, settings):
    settings.INCIDENT_REOPEN_MINUTES = 10
    service = make_service(failure_threshold=1)
    feed(service, ["down", "up", "down"], start=timezone.now() - timedelta(minutes=3))
    incident = Incident.objects.get(service=service)
    assert incident.status == "investigating"
    assert incident.reopen_count == 1


def test_a_failure_long_after_resolution_opens_a_new_incident(make_service, settings):
    settings.INCIDENT_REOPEN_MINUTES = 10
    service = make_service(failure_threshold=1)
    start = timezone.now() - timedelta(hours=2)
    feed(service, ["down", "up"], start=start)
    Incident.objects.update(resolved_at=start + timedelta(minutes=1))
    feed(service, ["down"])
    assert Incident.objects.filter(service=service).count() == 2


def test_no_incident_opens_during_maintenance(make_service):
    service = make_service(failure_threshold=1)
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        name="upgrade", starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)
    )
    window.services.add(service)
    feed(service, ["down", "down", "down"])
    assert not Incident.objects.exists()


def test_a_missed_slot_neither_opens_nor_resolves(make_service):
    service = make_service(failure_threshold=1)
    feed(service, ["missed", "missed"])
    assert not Incident.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_workers_opening_for_one_service_at_once_make_one_incident(target):
    service = service_actions.service_create(actor=None, id="racy", name="racy", url=f"{target}/ok")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                barrier.wait()
                try:
                    actions.incident_open(
                        service=service, source="check", impact_started_at=timezone.now()
                    )
                    outcomes.append("opened")
                except actions.AlreadyActive:
                    outcomes.append("already active")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already active", "opened"]
    assert Incident.objects.filter(service=service).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_batches_failing_one_service_concurrently_open_one_incident(target):
    service = service_actions.service_create(
        actor=None, id="racy2", name="racy2", url=f"{target}/ok", failure_threshold=1
    )
    now = timezone.now()
    barrier = threading.Barrier(2)

    def worker(offset: int) -> None:
        try:
            barrier.wait()
            at = now - timedelta(seconds=offset)
            service_actions.check_results_record(
                results=[Observation(service_id=service.id, due=at, started_at=at, status="down")]
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Incident.objects.filter(service=service).count() == 1


def test_active_incidents_are_exposed_to_prometheus_by_severity(make_service, client):
    service = make_service(failure_threshold=1, critical=True)
    feed(service, ["down"])
    body = client.get("/metrics").content.decode()
    assert 'noc_active_incidents{severity="critical"} 1' in body
    assert 'noc_active_incidents{severity="low"} 0' in body


# --- evaluation never costs a result ------------------------------------------------------------


def observation(service, at, status):
    down = status == "down"
    return Observation(
        service_id=service.id, due=at, started_at=at, status=status,
        error="HTTP 503" if down else "", status_code=503 if down else 200,
    )  # fmt: skip


def recorded_count(*services) -> int:
    return CheckResult.objects.filter(service_id__in=[s.id for s in services]).count()


def test_a_name_too_long_for_a_title_is_shortened_and_the_batch_recorded(make_service):
    long = make_service(name="x" * 195, failure_threshold=1)
    other = make_service(failure_threshold=1)
    now = timezone.now()

    service_actions.check_results_record(
        results=[observation(long, now, "down"), observation(other, now, "down")]
    )

    assert recorded_count(long, other) == 2
    title = Incident.objects.get(service=long).title
    assert len(title) == 200 and title.endswith("… is down")
    assert Incident.objects.filter(service=other).exists()


def test_two_recoveries_of_one_service_in_one_batch_resolve_once(make_service):
    service = make_service(failure_threshold=1, success_threshold=1)
    start = timezone.now() - timedelta(minutes=5)
    service_actions.check_results_record(results=[observation(service, start, "down")])

    # A re-dispatched slot beside a fresh one: both recoveries arrive in one batch.
    service_actions.check_results_record(
        results=[
            observation(service, start + timedelta(minutes=1), "up"),
            observation(service, start + timedelta(minutes=2), "up"),
        ]
    )

    assert recorded_count(service) == 3
    incident = Incident.objects.get(service=service)
    assert incident.status == "resolved"
    assert incident.events.filter(kind="resolved").count() == 1


def test_an_error_in_evaluation_is_logged_and_the_results_are_kept(
    make_service, monkeypatch, caplog
):
    broken, fine = make_service(failure_threshold=1), make_service(failure_threshold=1)
    real_open = actions.incident_open

    def open_or_fail(*, service, **kwargs):
        if service.id == broken.id:
            raise RuntimeError("a bug in opening")
        return real_open(service=service, **kwargs)

    monkeypatch.setattr(actions, "incident_open", open_or_fail)
    now = timezone.now()

    service_actions.check_results_record(
        results=[observation(broken, now, "down"), observation(fine, now, "down")]
    )

    assert recorded_count(broken, fine) == 2
    assert list(Incident.objects.values_list("service_id", flat=True)) == [fine.id]
    assert f"incident evaluation of {broken.id}" in caplog.text
    broken.refresh_from_db()
    assert broken.status == "down"  # the service's state was written with its result


def committed_service(target: str, service_id: str):
    """A service opening and resolving on one result, for tests whose other connections must
    see it (transaction=True)."""
    return service_actions.service_create(
        actor=None, id=service_id, name=service_id, url=f"{target}/ok",
        failure_threshold=1, success_threshold=1,
    )  # fmt: skip


def _operator_acts_first(monkeypatch, name, act):
    """Make the worker's call of actions.<name> wait for `act`, run on another connection:
    an operator's change landing between the batch's read and the worker's lock. Only the
    first call is interleaved."""
    real = getattr(actions, name)

    def interleaved(**kwargs):
        monkeypatch.setattr(actions, name, real)

        def operator():
            try:
                act()
            finally:
                connection.close()

        thread = threading.Thread(target=operator)
        thread.start()
        thread.join()
        return real(**kwargs)

    monkeypatch.setattr(actions, name, interleaved)


@pytest.mark.django_db(transaction=True)
def test_an_operator_resolving_first_does_not_cost_the_recovery(target, make_user, monkeypatch):
    service = committed_service(target, "race-resolve")
    start = timezone.now() - timedelta(minutes=2)
    service_actions.check_results_record(results=[observation(service, start, "down")])
    incident = Incident.objects.get(service=service)
    operator = make_user("operator")
    resolve = actions.incident_resolve  # the operator's call, not the interleaved one

    def resolve_and_close():
        actions.incident_close(incident=resolve(incident=incident, actor=operator), actor=operator)

    _operator_acts_first(monkeypatch, "incident_resolve", resolve_and_close)

    service_actions.check_results_record(
        results=[observation(service, start + timedelta(minutes=1), "up")]
    )

    assert recorded_count(service) == 2
    service.refresh_from_db()
    assert (service.status, service.consecutive_successes) == ("up", 1)
    assert Incident.objects.get(pk=incident.pk).status == "closed"


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_an_operator_closed_the_recent_incident_opens_a_new_one(
    target, make_user, monkeypatch, settings
):
    settings.INCIDENT_REOPEN_MINUTES = 10
    service = committed_service(target, "race-reopen")
    start = timezone.now() - timedelta(minutes=3)
    service_actions.check_results_record(results=[observation(service, start, "down")])
    service_actions.check_results_record(
        results=[observation(service, start + timedelta(minutes=1), "up")]
    )
    first = Incident.objects.get(service=service)
    operator = make_user("operator")
    _operator_acts_first(
        monkeypatch,
        "incident_reopen_for_failure",
        lambda: actions.incident_close(incident=first, actor=operator),
    )

    service_actions.check_results_record(
        results=[observation(service, start + timedelta(minutes=2), "down")]
    )

    assert recorded_count(service) == 3
    statuses = dict(Incident.objects.filter(service=service).values_list("pk", "status"))
    assert statuses.pop(first.pk) == "closed"
    assert list(statuses.values()) == ["new"]


def test_an_open_incident_counts_every_failure_of_a_batch(make_service):
    service = make_service(failure_threshold=1)
    start = timezone.now() - timedelta(minutes=10)
    service_actions.check_results_record(results=[observation(service, start, "down")])
    incident = Incident.objects.get(service=service)
    before = incident.failed_checks

    # E.g. the periods a silent push job missed, recorded by one detector run.
    service_actions.check_results_record(
        results=[observation(service, start + timedelta(minutes=m), "down") for m in (1, 2, 3)]
    )

    incident.refresh_from_db()
    assert incident.failed_checks == before + 3
