"""The incidents admin: badges, filters and the read-only timeline render; opening and editing go
through the actions and audit once; bulk acknowledge/resolve/close report refusals per incident."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEvent
from incidents import actions
from incidents.models import Incident, IncidentEvent

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/incidents/incident/"


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_(admin_user) -> Client:
    return login(admin_user)


@pytest.fixture
def operator_client(operator_user) -> Client:
    return login(operator_user)


@pytest.fixture
def open_incident(make_service):
    def make(severity: str = "high", title: str = "Checkout is down", **service_fields):
        service = make_service(**service_fields)
        return actions.incident_create_manual(
            actor=None, service=service, title=title, severity=severity
        )

    return make


def audits(incident: Incident) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            target_type="incidents.incident", target_id=str(incident.pk)
        ).order_by("id")
    )


def change_form(incident: Incident, **overrides: str) -> dict[str, str]:
    """The change form as a browser posts it, with the read-only timeline's management form."""
    events = list(incident.events.order_by("time", "id"))
    data = {
        "title": incident.title, "summary": incident.summary, "severity": incident.severity,
        "root_cause": incident.root_cause, "resolution_notes": incident.resolution_notes,
        "events-TOTAL_FORMS": str(len(events)), "events-INITIAL_FORMS": str(len(events)),
        "events-MIN_NUM_FORMS": "0", "events-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    for index, event in enumerate(events):
        data[f"events-{index}-id"] = str(event.pk)
        data[f"events-{index}-incident"] = str(incident.pk)
    data.update(overrides)
    return data


def run_action(client: Client, action: str, *incidents: Incident):
    ids = [str(incident.pk) for incident in incidents]
    return client.post(CHANGELIST, {"action": action, "_selected_action": ids}, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- pages --------------------------------------------------------------------------------------


def test_the_list_shows_badges_and_filters(admin_client_, open_incident):
    web = open_incident(severity="critical", title="Web down", id="web")
    db = open_incident(severity="low", title="DB lag", id="db")
    actions.incident_resolve(incident=db, actor=None)

    page = admin_client_.get(CHANGELIST).content.decode()
    assert "Critical</span>" in page and "#cf222e" in page
    assert "Resolved</span>" in page and "#1a7f37" in page

    for params, shown, hidden in [
        ({"status__exact": "resolved"}, db, web),
        ({"severity__exact": "critical"}, web, db),
        ({"service__id__exact": "db"}, db, web),
        ({"source__exact": "manual", "q": "web"}, web, db),
    ]:
        filtered = admin_client_.get(CHANGELIST, params).content.decode()
        assert f"{CHANGELIST}{shown.pk}/change/" in filtered, params
        assert f"{CHANGELIST}{hidden.pk}/change/" not in filtered, params


def test_the_change_page_shows_a_read_only_timeline(admin_client_, open_incident):
    incident = open_incident()
    actions.incident_comment(incident=incident, actor=None, message="looking into it")
    response = admin_client_.get(f"{CHANGELIST}{incident.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "looking into it" in page
    assert 'name="events-MAX_NUM_FORMS" value="0"' in page  # nothing can be added
    assert 'name="events-0-message"' not in page  # shown as text, not as an input
    assert f"{CHANGELIST}{incident.pk}/delete/" not in page


def test_the_add_page_renders(admin_client_):
    response = admin_client_.get(f"{CHANGELIST}add/")
    assert response.status_code == 200
    assert 'name="service"' in response.content.decode()


def test_an_operator_sees_the_list_but_cannot_edit(operator_client, open_incident):
    incident = open_incident()
    assert operator_client.get(CHANGELIST).status_code == 200
    response = operator_client.get(f"{CHANGELIST}{incident.pk}/change/")
    assert response.status_code == 200
    assert 'name="title"' not in response.content.decode()  # view only


# --- writes -------------------------------------------------------------------------------------


def test_opening_by_hand_goes_through_the_action(admin_client_, make_service, admin_user):
    make_service(id="web")
    response = admin_client_.post(
        f"{CHANGELIST}add/",
        {"service": "web", "title": "Web is slow", "severity": "medium", "summary": "p99 5s"},
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    incident = Incident.objects.get()
    assert (incident.source, incident.severity, incident.status) == ("manual", "medium", "new")
    assert [e.kind for e in incident.events.all()] == ["opened"]
    assert [(a.action, a.actor) for a in audits(incident)] == [("create", admin_user)]


def test_opening_a_second_active_incident_is_a_form_error(admin_client_, open_incident):
    incident = open_incident()
    response = admin_client_.post(
        f"{CHANGELIST}add/",
        {"service": incident.service_id, "title": "Again", "severity": "low", "summary": ""},
    )
    assert response.status_code == 200
    assert f"already has active incident #{incident.pk}" in response.content.decode()
    assert Incident.objects.count() == 1


def test_a_change_goes_through_incident_update_and_audits_once(admin_client_, open_incident):
    incident = open_incident()
    url = f"{CHANGELIST}{incident.pk}/change/"
    response = admin_client_.post(
        url, change_form(incident, severity="critical", root_cause="expired certificate")
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    incident.refresh_from_db()
    assert (incident.severity, incident.root_cause) == ("critical", "expired certificate")
    kinds = [e.kind for e in incident.events.all()]
    assert kinds == ["opened", "severity_changed", "notes_updated"]
    [audit] = audits(incident)
    assert audit.action == "update"
    assert audit.changes["severity"] == ["high", "critical"]


def test_saving_an_unchanged_form_writes_nothing(admin_client_, open_incident):
    incident = open_incident()
    before = (IncidentEvent.objects.count(), AuditEvent.objects.count())
    response = admin_client_.post(f"{CHANGELIST}{incident.pk}/change/", change_form(incident))
    assert response.status_code == 302
    assert (IncidentEvent.objects.count(), AuditEvent.objects.count()) == before


# --- bulk actions -------------------------------------------------------------------------------


def test_operators_acknowledge_resolve_and_close(operator_client, open_incident, operator_user):
    first, second = open_incident(), open_incident()
    for action, done in [
        ("acknowledge_incidents", "acknowledged"),
        ("resolve_incidents", "resolved"),
        ("close_incidents", "closed"),
    ]:
        response = run_action(operator_client, action, first, second)
        assert messages_of(response) == [f"#{first.pk}: {done}.", f"#{second.pk}: {done}."]
    for incident in (first, second):
        incident.refresh_from_db()
        assert incident.status == "closed"
        assert incident.acknowledged_by == incident.closed_by == operator_user
        kinds = [e.kind for e in incident.events.all()]
        assert kinds == ["opened", "acknowledged", "resolved", "closed"]
        verbs = [a.verb for a in audits(incident)]
        assert verbs == ["acknowledge", "resolve", "close"]


def test_a_refused_transition_is_reported_per_incident(operator_client, open_incident):
    resolved, fresh = open_incident(), open_incident()
    actions.incident_resolve(incident=resolved, actor=None)
    response = run_action(operator_client, "resolve_incidents", resolved, fresh)
    first, second = messages_of(response)
    assert first.startswith(f"#{resolved.pk}: An incident that is resolved cannot become resolved")
    assert first.endswith("(allowed: closed, investigating)")
    assert second == f"#{fresh.pk}: resolved."
    fresh.refresh_from_db()
    assert fresh.status == "resolved"

    response = run_action(operator_client, "acknowledge_incidents", resolved)
    assert messages_of(response) == [
        f"#{resolved.pk}: A resolved incident cannot be acknowledged. "
        "(allowed: closed, investigating)"
    ]


def test_viewers_are_not_offered_the_actions(viewer_user, open_incident):
    incident = open_incident()
    client = login(viewer_user)
    page = client.get(CHANGELIST).content.decode()
    assert "acknowledge_incidents" not in page
    run_action(client, "acknowledge_incidents", incident)
    incident.refresh_from_db()
    assert incident.acknowledged_at is None
