"""What the timeline says when a failure reopens a resolved incident: after a recovery, or
while the service never recovered (someone resolved it by hand during the outage)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from incidents import actions
from incidents.models import Incident
from incidents.tests.test_evaluation import feed


def reopened_message(incident: Incident) -> str:
    return incident.events.filter(kind="reopened").latest("id").message


def test_a_failure_after_a_recovery_says_it_failed_again(make_service, settings):
    settings.INCIDENT_REOPEN_MINUTES = 10
    service = make_service(failure_threshold=1)
    feed(service, ["down", "up", "down"], start=timezone.now() - timedelta(minutes=3))
    incident = Incident.objects.get(service=service)
    assert reopened_message(incident) == "The service failed again soon after recovering"


def test_a_manual_resolve_during_the_outage_says_the_service_was_still_failing(
    make_service, operator_user, settings
):
    settings.INCIDENT_REOPEN_MINUTES = 10
    service = make_service(failure_threshold=1)
    feed(service, ["down", "down"], start=timezone.now() - timedelta(minutes=2))
    incident = Incident.objects.get(service=service)
    actions.incident_resolve(incident=incident, actor=operator_user)
    feed(service, ["down"], start=timezone.now())  # the next check, after the resolve
    incident.refresh_from_db()
    assert incident.status == "investigating"
    assert reopened_message(incident) == (
        "Reopened: the service was still failing when the incident was resolved by oscar"
    )


def test_a_manual_resolve_after_a_recovery_keeps_the_recovery_wording(
    make_service, operator_user, settings
):
    settings.INCIDENT_REOPEN_MINUTES = 10
    service = make_service(failure_threshold=1, success_threshold=3)
    feed(service, ["down", "up"], start=timezone.now() - timedelta(minutes=2))
    incident = Incident.objects.get(service=service)
    actions.incident_resolve(incident=incident, actor=operator_user)  # before the 3 successes
    feed(service, ["down"], start=timezone.now())
    incident.refresh_from_db()
    assert reopened_message(incident) == "The service failed again soon after recovering"
