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
from services.models import MaintenanceWindow


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
