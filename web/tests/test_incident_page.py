"""An incident's page: timeline and evidence, and the lifecycle actions each role may take,
posted with CSRF protection through incidents.actions (timeline event and audit row)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.choices import Role
from accounts.models import AuditEvent
from incidents import actions as incident_actions
from incidents.choices import EventKind, IncidentSource
from incidents.models import Incident
from services.actions import Observation, check_results_record
from services.tests.fixtures import ensure_partitions
from services.timeseries import CHECK_RESULTS
from web.tests.forms import messages_of, submit


def url(incident: Incident, action: str = "") -> str:
    return f"/incidents/{incident.pk}/" + (f"{action}/" if action else "")


@pytest.fixture
def incident(make_service):
    return incident_actions.incident_create_manual(
        actor=None, service=make_service(name="Checkout"), title="Checkout errors",
        severity="high", summary="5xx from the payment provider",
    )  # fmt: skip


def kinds(incident: Incident) -> list[str]:
    return list(incident.events.order_by("time", "id").values_list("kind", flat=True))


# --- what it shows ------------------------------------------------------------------------------


def test_the_page_shows_the_incident_its_timeline_and_its_evidence(console_as, make_service):
    service = make_service(name="Search", failure_threshold=2)
    now = timezone.now()
    ensure_partitions(CHECK_RESULTS, now - timedelta(days=1), now + timedelta(days=1))
    errors = ["connect timeout after 2.0 s", "HTTP 502 Bad Gateway"]
    check_results_record(
        results=[
            Observation(service_id=service.pk, due=now - timedelta(minutes=2 - i),
                        started_at=now, status="down", error=error, status_code=502)
            for i, error in enumerate(errors)
        ],
        claimed=False,
    )  # fmt: skip
    incident = Incident.objects.get(service=service)
    assert incident.source == IncidentSource.CHECK
    html = console_as(Role.VIEWER).get(url(incident)).content.decode()
    assert f"#{incident.pk} Search is down" in html
    evidence = html[html.index('id="evidence"') :]
    for error in errors:
        assert error in evidence
    assert 'data-event="opened"' in html
    assert 'href="/services/search/"'.replace("search", service.pk) in html


def test_a_viewer_reads_the_page_without_any_action(console_as, incident):
    html = console_as(Role.VIEWER).get(url(incident)).content.decode()
    assert "5xx from the payment provider" in html
    assert 'id="incident-actions"' not in html


def test_an_operator_sees_the_actions_the_state_allows(console_as, incident):
    html = console_as(Role.OPERATOR).get(url(incident)).content.decode()
    for name in ("acknowledge", "resolve", "comment"):
        assert f'action="{url(incident, name)}"' in html
    assert f'action="{url(incident, "close")}"' not in html  # only once resolved
    assert '<option value="investigating">Investigating</option>' in html


def test_an_unknown_incident_is_a_404(console_as, db):
    assert console_as(Role.VIEWER).get("/incidents/999999/").status_code == 404


# --- acting through the page ----------------------------------------------------------------------


def test_acknowledge_comment_resolve_and_close_are_the_api_s_audited_actions(console_as, incident):
    client = console_as(Role.OPERATOR)
    page = url(incident)
    assert submit(client, page, url(incident, "acknowledge")).status_code == 302
    assert (
        submit(client, page, url(incident, "comment"), {"message": "Rolling back"}).status_code
        == 302
    )
    assert (
        submit(
            client, page, url(incident, "status"), {"status": "in_progress", "note": "fix"}
        ).status_code
        == 302
    )
    assert (
        submit(
            client, page, url(incident, "resolve"), {"resolution_notes": "Rolled back"}
        ).status_code
        == 302
    )
    assert submit(client, page, url(incident, "close")).status_code == 302
    incident.refresh_from_db()
    assert incident.status == "closed"
    assert incident.acknowledged_by.role == Role.OPERATOR
    assert incident.resolution_notes == "Rolled back"
    assert kinds(incident) == [
        EventKind.OPENED, EventKind.ACKNOWLEDGED, EventKind.COMMENT, EventKind.STATUS_CHANGED,
        EventKind.RESOLVED, EventKind.CLOSED,
    ]  # fmt: skip
    verbs = list(
        AuditEvent.objects.filter(target_id=str(incident.pk))
        .order_by("id")
        .values_list("verb", flat=True)
    )
    assert verbs == ["acknowledge", "comment", "change_status", "resolve", "close"]
    html = client.get(page).content.decode()
    assert "Rolling back" in html
    assert 'id="incident-status">Closed<' in html


def test_assigning_to_someone_and_to_nobody(console_as, incident, make_user):
    someone = make_user(Role.OPERATOR, username="pat")
    client = console_as(Role.OPERATOR)
    assert f'value="{someone.pk}"' in client.get(url(incident)).content.decode()
    submit(client, url(incident), url(incident, "assign"), {"assignee": someone.pk})
    incident.refresh_from_db()
    assert incident.assignee == someone
    submit(client, url(incident), url(incident, "assign"), {"assignee": ""})
    incident.refresh_from_db()
    assert incident.assignee is None


def test_a_refused_transition_is_a_message_not_an_error(console_as, incident):
    client = console_as(Role.OPERATOR)
    submit(client, url(incident), url(incident, "acknowledge"))
    response = submit(client, url(incident), url(incident, "acknowledge"))
    assert response.status_code == 302
    (message,) = messages_of(client, url(incident))
    assert message.startswith("Already acknowledged at ")
    response = submit(client, url(incident), url(incident, "close"))
    (message,) = messages_of(client, url(incident))
    assert "cannot become closed" in message and "allowed next: investigating" in message


@pytest.mark.parametrize(
    ("action", "data", "words"),
    [
        ("comment", {"message": "   "}, "message:"),
        ("status", {"status": "exploded"}, "status: "),
        ("assign", {"assignee": "x"}, "assignee: "),
        ("assign", {"assignee": "999999"}, "assignee: "),
    ],
)
def test_bad_input_is_refused_with_the_api_s_words(console_as, incident, action, data, words):
    client = console_as(Role.OPERATOR)
    assert submit(client, url(incident), url(incident, action), data).status_code == 302
    (message,) = messages_of(client, url(incident))
    assert message.startswith(words)
    assert kinds(incident) == [EventKind.OPENED]


@pytest.mark.parametrize(
    "action", ["acknowledge", "assign", "status", "comment", "resolve", "close"]
)
def test_a_viewer_may_not_act_even_by_posting(console_as, incident, action):
    response = submit(console_as(Role.VIEWER), url(incident), url(incident, action),
                      {"message": "x", "status": "investigating", "assignee": ""})  # fmt: skip
    assert response.status_code == 403
    assert kinds(incident) == [EventKind.OPENED]


def test_actions_need_a_csrf_token(console_as, incident):
    response = console_as(Role.ADMIN).post(url(incident, "acknowledge"))
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


# --- cost ---------------------------------------------------------------------------------------


def test_the_page_costs_the_same_queries_for_a_short_or_long_timeline(
    console_as, incident, make_user, django_assert_max_num_queries
):
    client = console_as(Role.OPERATOR)
    client.get(url(incident))
    with CaptureQueriesContext(connection) as small:
        client.get(url(incident))
    # Session, user, incident, timeline, public updates, failed checks, SLO alerts, assignees,
    # the status page's settings and whether the service is public.
    assert len(small) <= 10
    for i in range(20):
        incident_actions.incident_comment(
            incident=incident, actor=make_user(Role.OPERATOR), message=f"note {i}"
        )
    with django_assert_max_num_queries(len(small)):
        html = client.get(url(incident)).content.decode()
    assert html.count('data-event="comment"') == 20


# --- the admin's change form offers the same actions ---------------------------------------


def test_the_admin_change_form_offers_the_actions_and_comes_back(console_as, incident):
    client = console_as(Role.ADMIN)
    change = f"/admin/incidents/incident/{incident.pk}/change/"
    html = client.get(change).content.decode()
    assert f'href="/incidents/{incident.pk}/">Open in the console<' in html
    assert f'action="{url(incident, "acknowledge")}"' in html
    assert f'name="next" value="{change}"' in html
    response = submit(client, change, url(incident, "acknowledge"), {"next": change})
    assert response.status_code == 302
    assert response["Location"] == change
    incident.refresh_from_db()
    assert incident.acknowledged_at is not None
    assert AuditEvent.objects.filter(target_id=str(incident.pk), verb="acknowledge").exists()


def test_next_never_leaves_the_site(console_as, incident):
    client = console_as(Role.OPERATOR)
    response = submit(
        client, url(incident), url(incident, "acknowledge"), {"next": "https://evil.example/"}
    )
    assert response["Location"] == url(incident)


# --- words for the public -------------------------------------------------------------------------


def test_an_operator_publishes_an_update_for_the_status_page(console_as, incident):
    viewer = console_as(Role.VIEWER).get(url(incident)).content.decode()
    assert 'id="public-title">Checkout: service disruption<' in viewer
    assert 'id="publish"' not in viewer
    client = console_as(Role.OPERATOR)
    response = submit(
        client, url(incident), url(incident, "publish"),
        {"public_title": "Payments delayed", "phase": "identified", "message": "A fix is out."},
    )  # fmt: skip
    assert response.status_code == 302
    html = client.get(url(incident)).content.decode()
    assert 'id="public-title">Payments delayed<' in html
    assert "A fix is out." in html
    assert AuditEvent.objects.filter(target_id=str(incident.pk), verb="publish").exists()
    assert kinds(incident)[-1] == EventKind.PUBLIC_UPDATE
