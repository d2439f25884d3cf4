"""The incident state machine and its timeline, through the actions."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import AuditEvent
from incidents import actions
from incidents.models import Incident


@pytest.fixture
def incident(make_service):
    return actions.incident_create_manual(
        actor=None, service=make_service(), title="API errors", severity="high"
    )


def kinds(incident: Incident) -> list[str]:
    return list(incident.events.values_list("kind", flat=True))


def test_an_incident_walks_its_lifecycle_with_a_timeline(incident, operator_user):
    actions.incident_acknowledge(incident=incident, actor=operator_user)
    actions.incident_change_status(incident=incident, status="investigating", actor=operator_user)
    actions.incident_comment(incident=incident, actor=operator_user, message="rolling back")
    actions.incident_resolve(incident=incident, actor=operator_user, resolution_notes="rolled back")
    actions.incident_close(incident=incident, actor=operator_user)
    incident.refresh_from_db()
    assert incident.status == "closed"
    assert incident.acknowledged_by == operator_user
    assert incident.resolved_by == operator_user
    assert incident.resolution_notes == "rolled back"
    assert incident.acknowledged_at <= incident.resolved_at <= incident.closed_at
    assert kinds(incident) == [
        "opened", "acknowledged", "status_changed", "comment", "resolved", "closed",
    ]  # fmt: skip
    assert AuditEvent.objects.filter(target_type="incidents.incident", verb="acknowledge").exists()


def test_acknowledging_does_not_change_the_status_and_only_once(incident, operator_user):
    actions.incident_acknowledge(incident=incident, actor=operator_user)
    incident.refresh_from_db()
    assert incident.status == "new"
    with pytest.raises(actions.TransitionNotAllowed, match="Already acknowledged"):
        actions.incident_acknowledge(incident=incident, actor=operator_user)


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        (["resolved", "closed"], "investigating"),  # closed → investigating
        (["resolved"], "resolved"),  # resolving twice
        ([], "closed"),  # new → closed
    ],
)
def test_illegal_transitions_are_refused_with_the_allowed_states(
    incident, operator_user, path, wanted
):
    for status in path:
        actions.incident_change_status(incident=incident, status=status, actor=operator_user)
    incident.refresh_from_db()
    events = incident.events.count()
    with pytest.raises(actions.TransitionNotAllowed) as refused:
        actions.incident_change_status(incident=incident, status=wanted, actor=operator_user)
    assert refused.value.current == incident.status
    assert refused.value.allowed == list(incident.allowed_next())
    assert incident.events.count() == events


def test_an_unknown_status_is_a_validation_error(incident, operator_user):
    with pytest.raises(ValidationError, match="Unknown status 'exploded'"):
        actions.incident_change_status(incident=incident, status="exploded", actor=operator_user)


def test_a_comment_over_the_limit_is_refused_and_nothing_written(incident, operator_user, settings):
    settings.INCIDENT_COMMENT_MAX_CHARS = 10
    with pytest.raises(ValidationError, match="at most 10 characters"):
        actions.incident_comment(incident=incident, actor=operator_user, message="x" * 11)
    assert kinds(incident) == ["opened"]


def test_assigning_an_inactive_user_is_refused(incident, operator_user, make_user):
    ghost = make_user("operator", is_active=False)
    with pytest.raises(ValidationError, match="inactive"):
        actions.incident_assign(incident=incident, assignee=ghost, actor=operator_user)
    actions.incident_assign(incident=incident, assignee=operator_user, actor=operator_user)
    incident.refresh_from_db()
    assert incident.assignee == operator_user


def test_a_second_active_incident_for_a_service_is_refused(incident):
    with pytest.raises(actions.AlreadyActive) as refused:
        actions.incident_create_manual(
            actor=None, service=incident.service, title="again", severity="low"
        )
    assert refused.value.existing == incident


def test_reopening_a_resolved_incident_counts_and_clears_the_resolution(incident, operator_user):
    actions.incident_resolve(incident=incident, actor=operator_user)
    actions.incident_change_status(incident=incident, status="investigating", actor=operator_user)
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_at, incident.reopen_count) == (
        "investigating",
        None,
        1,
    )
    assert kinds(incident)[-1] == "reopened"


def test_the_severity_comes_from_the_service_unless_overridden(make_service):
    critical = make_service(critical=True)
    plain = make_service()
    custom = make_service(incident_severity="medium")
    now = timezone.now()
    opened = [
        actions.incident_open(service=s, source="check", impact_started_at=now).severity
        for s in (critical, plain, custom)
    ]
    assert opened == ["critical", "high", "medium"]
