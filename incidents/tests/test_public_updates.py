"""Updates written for the public: the action (timeline event, audit, the public title) and
the API endpoint that calls it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import AuditEvent
from incidents import actions
from incidents.choices import EventKind
from incidents.models import IncidentUpdate


@pytest.fixture
def incident(make_service):
    return actions.incident_create_manual(
        actor=None, service=make_service(name="Checkout"), title="pgbouncer on db-7 saturated",
        severity="high",
    )  # fmt: skip


def test_publishing_writes_the_update_a_timeline_event_and_an_audit_row(incident, operator_user):
    update = actions.incident_publish(
        incident=incident, actor=operator_user, phase="identified",
        message="  Payments fail for some customers; a fix is being deployed.  ",
        public_title="Payments failing",
    )  # fmt: skip
    incident.refresh_from_db()
    assert incident.public_title == "Payments failing"
    assert update.message == "Payments fail for some customers; a fix is being deployed."
    assert update.author == operator_user
    event = incident.events.get(kind=EventKind.PUBLIC_UPDATE)
    assert event.data == {
        "phase": "identified",
        "update": update.pk,
        "public_title": "Payments failing",
    }
    audit = AuditEvent.objects.get(verb="publish")
    assert audit.changes == {"public_title": ["", "Payments failing"]}


def test_the_public_title_is_kept_unless_given(incident, operator_user):
    actions.incident_publish(
        incident=incident, actor=operator_user, phase="investigating", message="Looking",
        public_title="Payments failing",
    )  # fmt: skip
    actions.incident_publish(
        incident=incident, actor=operator_user, phase="monitoring", message="Fixed, watching"
    )
    incident.refresh_from_db()
    assert incident.public_title == "Payments failing"
    actions.incident_publish(
        incident=incident, actor=operator_user, phase="resolved", message="Done", public_title=""
    )
    incident.refresh_from_db()
    assert incident.public_title == ""  # back to the generic words
    assert list(incident.public_updates.values_list("phase", flat=True)) == [
        "resolved", "monitoring", "investigating",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"phase": "investigating", "message": "   "}, "message"),
        ({"phase": "investigating", "message": "x" * 5001}, "message"),
        ({"phase": "sleeping", "message": "x"}, "phase"),
        ({"phase": "investigating", "message": "x", "public_title": "t" * 201}, "public_title"),
    ],
)
def test_bad_updates_are_refused_and_nothing_is_written(incident, operator_user, fields, field):
    with pytest.raises(ValidationError) as refused:
        actions.incident_publish(incident=incident, actor=operator_user, **fields)
    assert field in refused.value.message_dict
    assert not IncidentUpdate.objects.exists()
    assert not incident.events.filter(kind=EventKind.PUBLIC_UPDATE).exists()


def test_the_api_publishes_for_operators(client_as, incident):
    operator = client_as("operator")
    url = f"/api/incidents/{incident.pk}/publish/"
    data = {"phase": "investigating", "message": "Looking into it", "public_title": "Slow checkout"}
    response = operator.post(url, data)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["public_title"] == "Slow checkout"
    (update,) = body["public_updates"]
    assert update["phase"] == "investigating"
    assert update["message"] == "Looking into it"
    assert update["author"].startswith("operator")
    refused = operator.post(url, {"phase": "nope", "message": ""})
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"phase", "message"}
    assert (
        client_as("viewer").post(url, {"phase": "investigating", "message": "x"}).status_code == 403
    )
