"""The incidents API: the lifecycle end to end, refusals as 409/400 that write nothing, filters,
the active incident of a service, statistics and roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEvent
from incidents import actions
from incidents.models import Incident, IncidentEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(client_as):
    return client_as("admin")


@pytest.fixture
def operator_api(api_client, operator_user):
    api_client.force_authenticate(operator_user)
    return api_client


@pytest.fixture
def viewer_api(client_as):
    return client_as("viewer")


@pytest.fixture
def open_incident(make_service):
    """open_incident(**service_fields, severity=…) -> a new incident of a new service."""

    def make(severity: str = "high", title: str = "Checkout is down", **service_fields):
        service = make_service(**service_fields)
        return actions.incident_create_manual(
            actor=None, service=service, title=title, severity=severity
        )

    return make


@pytest.fixture
def incident(open_incident):
    return open_incident()


def url(incident: Incident, action: str = "") -> str:
    return f"/api/incidents/{incident.pk}/" + (f"{action}/" if action else "")


def audits(incident_id: int):
    return AuditEvent.objects.filter(
        target_type="incidents.incident", target_id=str(incident_id)
    ).order_by("id")


def written() -> tuple[int, int, list]:
    """What a refused request must leave as it was: timeline, audit trail, incident rows."""
    rows = list(Incident.objects.order_by("id").values())
    return IncidentEvent.objects.count(), AuditEvent.objects.count(), rows


# --- the lifecycle ------------------------------------------------------------------------------


def test_an_incident_is_worked_end_to_end(admin_api, operator_api, operator_user, make_service):
    make_service(id="checkout")
    created = admin_api.post(
        "/api/incidents/",
        {"service": "checkout", "title": "Checkout errors", "severity": "critical"},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "new" and body["source"] == "manual"
    assert body["allowed_next"] == ["investigating", "in_progress", "resolved"]
    incident_url = f"/api/incidents/{body['id']}/"

    steps = [
        ("acknowledge", {}),
        ("assign", {"assignee": operator_user.pk}),
        ("status", {"status": "in_progress", "note": "rolling back"}),
        ("comment", {"message": "rollback done, watching"}),
        ("resolve", {"resolution_notes": "bad deploy rolled back"}),
        ("close", {}),
    ]
    for action, payload in steps:
        response = operator_api.post(f"{incident_url}{action}/", payload)
        assert response.status_code == 200, (action, response.content)

    detail = response.json()
    assert detail["status"] == "closed"
    assert detail["is_active"] is False and detail["allowed_next"] == []
    assert detail["acknowledged_by"] == detail["resolved_by"] == detail["closed_by"] == "oscar"
    assert detail["assignee"] == operator_user.pk and detail["assignee_username"] == "oscar"
    assert detail["resolution_notes"] == "bad deploy rolled back"
    kinds = [event["kind"] for event in detail["events"]]
    assert kinds == [
        "opened", "acknowledged", "assigned", "status_changed", "comment", "resolved", "closed",
    ]  # fmt: skip
    comment = detail["events"][4]
    assert comment["actor"] == "oscar" and comment["message"] == "rollback done, watching"
    assert set(comment) == {"id", "kind", "actor", "message", "data", "time"}
    verbs = list(audits(body["id"]).values_list("action", "verb"))
    assert verbs == [
        ("create", ""), ("action", "acknowledge"), ("action", "assign"),
        ("action", "change_status"), ("action", "comment"), ("action", "resolve"),
        ("action", "close"),
    ]  # fmt: skip


def test_the_detail_shows_the_timeline_in_order(viewer_api, incident):
    actions.incident_comment(incident=incident, actor=None, message="first look")
    body = viewer_api.get(url(incident)).json()
    assert [e["kind"] for e in body["events"]] == ["opened", "comment"]
    assert body["events"][0]["actor"] is None
    assert body["events"][0]["data"]["source"] == "manual"
    assert body["service"] == incident.service_id


def test_a_resolved_incident_can_be_reopened_through_status(operator_api, incident):
    actions.incident_resolve(incident=incident, actor=None)
    response = operator_api.post(url(incident, "status"), {"status": "investigating"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "investigating" and body["reopen_count"] == 1
    assert body["resolved_at"] is None


def test_an_admin_edits_the_text_and_severity(admin_api, incident):
    response = admin_api.patch(url(incident), {"severity": "low", "root_cause": "DNS"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["severity"] == "low" and body["root_cause"] == "DNS"
    kinds = [e["kind"] for e in body["events"]]
    assert kinds == ["opened", "severity_changed", "notes_updated"]
    [audit] = audits(incident.pk).filter(action="update")
    assert audit.changes["severity"] == ["high", "low"]


def test_a_patch_that_changes_nothing_writes_nothing(admin_api, incident):
    before = written()
    response = admin_api.patch(url(incident), {"title": incident.title})
    assert response.status_code == 200
    assert written() == before


def test_the_lifecycle_cannot_be_changed_by_patch(admin_api, incident):
    response = admin_api.patch(url(incident), {"status": "closed", "title": "New title"})
    assert response.status_code == 200
    assert response.json()["status"] == "new"  # unknown fields are ignored, not applied


def test_put_and_delete_are_not_offered(admin_api, incident):
    assert admin_api.put(url(incident), {"title": "x"}).status_code == 405
    assert admin_api.delete(url(incident)).status_code == 405


# --- refusals -----------------------------------------------------------------------------------


def test_a_second_active_incident_of_a_service_is_409_naming_the_existing_one(admin_api, incident):
    response = admin_api.post(
        "/api/incidents/",
        {"service": incident.service_id, "title": "Again", "severity": "low"},
    )
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["existing_incident"] == incident.pk
    assert f"#{incident.pk}" in body["message"]


def test_a_closed_incident_cannot_go_back_to_investigating(operator_api, incident):
    actions.incident_resolve(incident=incident, actor=None)
    actions.incident_close(incident=incident, actor=None)
    response = operator_api.post(url(incident, "status"), {"status": "investigating"})
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["current"] == "closed" and body["wanted"] == "investigating"
    assert body["allowed"] == []
    assert body["code"] == "conflict"


def test_resolving_twice_is_409_with_the_allowed_states(operator_api, incident):
    assert operator_api.post(url(incident, "resolve")).status_code == 200
    response = operator_api.post(url(incident, "resolve"))
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["current"] == "resolved"
    assert body["allowed"] == ["closed", "investigating"]


def test_acknowledging_twice_is_409(operator_api, incident):
    assert operator_api.post(url(incident, "acknowledge")).status_code == 200
    response = operator_api.post(url(incident, "acknowledge"))
    assert response.status_code == 409
    assert "Already acknowledged" in response.json()["message"]


def test_an_unknown_status_is_400_naming_status(operator_api, incident):
    response = operator_api.post(url(incident, "status"), {"status": "sleeping"})
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["status"]
    assert body["message"].startswith("status:")


@pytest.mark.parametrize("method", ["post", "patch"])
def test_an_unknown_severity_is_400_naming_severity(admin_api, incident, method):
    if method == "post":
        payload = {"service": incident.service_id, "title": "x", "severity": "apocalyptic"}
        response = admin_api.post("/api/incidents/", payload)
    else:
        response = admin_api.patch(url(incident), {"severity": "apocalyptic"})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["severity"]


def test_a_comment_over_the_limit_is_400(operator_api, incident, settings):
    settings.INCIDENT_COMMENT_MAX_CHARS = 20
    response = operator_api.post(url(incident, "comment"), {"message": "x" * 21})
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["message"]
    assert "at most 20 characters" in body["message"]


def test_assigning_an_inactive_user_is_400_naming_assignee(operator_api, incident, make_user):
    gone = make_user("operator", is_active=False)
    response = operator_api.post(url(incident, "assign"), {"assignee": gone.pk})
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["assignee"]
    assert "inactive" in body["message"]


def test_assigning_an_unknown_user_is_400(operator_api, incident):
    response = operator_api.post(url(incident, "assign"), {"assignee": 999_999})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["assignee"]


def test_unassigning_with_null(operator_api, incident, operator_user):
    actions.incident_assign(incident=incident, assignee=operator_user, actor=None)
    response = operator_api.post(url(incident, "assign"), {"assignee": None})
    assert response.status_code == 200
    assert response.json()["assignee"] is None


def _closed(incident: Incident) -> Incident:
    actions.incident_resolve(incident=incident, actor=None)
    return actions.incident_close(incident=incident, actor=None)


REFUSALS = [
    # (setup, method, action, payload, expected status)
    (None, "post", "status", {"status": "sleeping"}, 400),
    (None, "post", "status", {}, 400),
    (_closed, "post", "status", {"status": "investigating"}, 409),
    (_closed, "post", "resolve", {}, 409),
    (_closed, "post", "acknowledge", {}, 409),
    (_closed, "post", "close", {}, 409),
    (None, "post", "close", {}, 409),
    (None, "post", "comment", {"message": "x" * 10_001}, 400),
    (None, "post", "comment", {"message": "   "}, 400),
    (None, "post", "assign", {"assignee": 999_999}, 400),
    (None, "post", "assign", {}, 400),
    (None, "patch", "", {"severity": "apocalyptic"}, 400),
    (None, "patch", "", {"title": ""}, 400),
    (None, "patch", "", {"title": "t" * 201}, 400),
]


@pytest.mark.parametrize(
    ("setup", "method", "action", "payload", "expected"),
    REFUSALS,
    ids=[f"{'closed' if r[0] else 'new'}-{r[1]}-{r[2] or 'detail'}-{r[4]}" for r in REFUSALS],
)
def test_a_refused_request_writes_nothing(
    admin_api, incident, setup, method, action, payload, expected
):
    if setup:
        setup(incident)
    before = written()
    response = getattr(admin_api, method)(url(incident, action), payload)
    assert response.status_code == expected, response.content
    assert written() == before


def test_an_inactive_assignee_and_a_duplicate_opening_write_nothing(admin_api, incident, make_user):
    gone = make_user("viewer", is_active=False)
    before = written()
    assert admin_api.post(url(incident, "assign"), {"assignee": gone.pk}).status_code == 400
    duplicate = {"service": incident.service_id, "title": "Again", "severity": "low"}
    assert admin_api.post("/api/incidents/", duplicate).status_code == 409
    assert written() == before


def test_an_unknown_incident_is_404(viewer_api, operator_api):
    assert viewer_api.get("/api/incidents/999999/").status_code == 404
    assert operator_api.post("/api/incidents/999999/acknowledge/").status_code == 404


# --- roles --------------------------------------------------------------------------------------


def test_a_viewer_reads_but_cannot_acknowledge(viewer_api, incident):
    assert viewer_api.get(url(incident)).status_code == 200
    before = written()
    response = viewer_api.post(url(incident, "acknowledge"))
    assert response.status_code == 403
    assert "operator" in response.json()["message"]
    assert written() == before


def test_an_operator_cannot_open_or_edit(operator_api, incident):
    payload = {"service": incident.service_id, "title": "x", "severity": "low"}
    assert operator_api.post("/api/incidents/", payload).status_code == 403
    assert operator_api.patch(url(incident), {"title": "x"}).status_code == 403


# --- lists and filters --------------------------------------------------------------------------


@pytest.fixture
def fleet(open_incident):
    """Four incidents of four services in different states, detected a day apart."""
    web = open_incident(severity="critical", title="Web down", id="web", tags=["prod", "edge"])
    api = open_incident(severity="high", title="API slow", id="api", tags=["prod"])
    db = open_incident(severity="low", title="DB replica lag", id="db", tags=["staging"])
    dns = open_incident(severity="medium", title="DNS flapping", id="dns")
    actions.incident_resolve(incident=api, actor=None)
    actions.incident_resolve(incident=db, actor=None)
    actions.incident_close(incident=db, actor=None)
    actions.incident_change_status(incident=dns, status="investigating", actor=None)
    base = datetime(2024, 5, 1, tzinfo=UTC)
    for days, incident in enumerate([web, api, db, dns]):
        Incident.objects.filter(pk=incident.pk).update(detected_at=base + timedelta(days=days))
    return {"web": web, "api": api, "db": db, "dns": dns}


def titles(client, **params) -> list[str]:
    response = client.get("/api/incidents/", params)
    assert response.status_code == 200, response.content
    return [row["title"] for row in response.json()["results"]]


def test_the_list_is_newest_first(viewer_api, fleet):
    assert titles(viewer_api) == ["DNS flapping", "DB replica lag", "API slow", "Web down"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "resolved"}, ["API slow"]),
        ({"status": ["new", "investigating"]}, ["DNS flapping", "Web down"]),
        ({"severity": "critical"}, ["Web down"]),
        ({"service": "db"}, ["DB replica lag"]),
        ({"tag": "prod"}, ["API slow", "Web down"]),
        ({"active": "true"}, ["DNS flapping", "Web down"]),
        ({"active": "false"}, ["DB replica lag", "API slow"]),
        ({"opened_after": "2024-05-02T00:00:00Z"}, ["DNS flapping", "DB replica lag", "API slow"]),
        ({"opened_before": "2024-05-02T00:00:00Z"}, ["Web down"]),
        ({"opened_after": "2024-05-02T00:00:00Z", "opened_before": "2024-05-03T00:00:00Z"},
         ["API slow"]),
        ({"search": "down"}, ["Web down"]),
        ({"ordering": "detected_at"}, ["Web down", "API slow", "DB replica lag", "DNS flapping"]),
        ({"source": "manual", "service": "web"}, ["Web down"]),
    ],
)  # fmt: skip
def test_the_list_filters(viewer_api, fleet, params, expected):
    assert titles(viewer_api, **params) == expected


@pytest.mark.parametrize(
    "params",
    [{"status": "sleeping"}, {"severity": "apocalyptic"}, {"opened_after": "yesterday"}],
)
def test_a_bad_filter_is_400_naming_it(viewer_api, fleet, params):
    response = viewer_api.get("/api/incidents/", params)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == list(params)


def test_the_list_is_paginated(viewer_api, fleet):
    page = viewer_api.get("/api/incidents/", {"page_size": 3}).json()
    assert page["count"] == 4 and len(page["results"]) == 3 and page["next"]
    second = viewer_api.get("/api/incidents/", {"page_size": 3, "page": 2}).json()
    assert [row["title"] for row in second["results"]] == ["Web down"]


def test_the_list_costs_the_same_queries_for_any_number_of_rows(
    viewer_api, open_incident, operator_user, django_assert_max_num_queries
):
    open_incident()
    with CaptureQueriesContext(connection) as few:
        assert viewer_api.get("/api/incidents/").status_code == 200
    for _ in range(20):
        incident = open_incident()
        actions.incident_assign(incident=incident, assignee=operator_user, actor=operator_user)
        actions.incident_acknowledge(incident=incident, actor=operator_user)
        actions.incident_resolve(incident=incident, actor=operator_user)
    with django_assert_max_num_queries(len(few.captured_queries)):
        rows = viewer_api.get("/api/incidents/").json()["results"]
    assert len(rows) == 21
    assert rows[0]["resolved_by"] == "oscar" and rows[0]["assignee_username"] == "oscar"


def test_the_detail_costs_the_same_queries_for_any_timeline(
    viewer_api, incident, django_assert_max_num_queries
):
    with CaptureQueriesContext(connection) as few:
        viewer_api.get(url(incident))
    for n in range(15):
        actions.incident_comment(incident=incident, actor=None, message=f"note {n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(viewer_api.get(url(incident)).json()["events"]) == 16


# --- the active incident of a service -----------------------------------------------------------


def test_the_active_incident_of_a_service(viewer_api, fleet):
    response = viewer_api.get("/api/incidents/active/", {"service": "web"})
    assert response.status_code == 200, response.content
    assert response.json()["id"] == fleet["web"].pk
    assert response.json()["events"][0]["kind"] == "opened"


@pytest.mark.parametrize(
    ("service", "status", "words"),
    [("api", 404, "no active incident"), ("nope", 404, "Unknown service"), ("", 400, "service")],
)
def test_no_active_incident_is_404(viewer_api, fleet, service, status, words):
    response = viewer_api.get("/api/incidents/active/", {"service": service})
    assert response.status_code == status
    assert words in response.json()["message"]


# --- statistics ---------------------------------------------------------------------------------


def test_stats_over_the_api(viewer_api, fleet):
    response = viewer_api.get(
        "/api/incidents/stats/",
        {"from": "2024-05-01T00:00:00Z", "to": "2024-05-05T00:00:00Z", "tag": "prod"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["total"] == 2 and body["resolved"] == 1 and body["active"] == 1
    assert body["by_severity"] == {"critical": 1, "high": 1, "medium": 0, "low": 0}
    assert [day["date"] for day in body["daily"]] == [
        "2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04",
    ]  # fmt: skip
    assert [day["opened"] for day in body["daily"]] == [1, 1, 0, 0]
    assert body["from"] == "2024-05-01T00:00:00Z"


def test_stats_default_to_the_last_30_days(viewer_api, incident):
    body = viewer_api.get("/api/incidents/stats/").json()
    assert body["total"] == 1 and body["active"] == 1
    assert len(body["daily"]) in (30, 31)  # 31 when now is not midnight
    span = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    assert span == timedelta(days=30)
    assert datetime.fromisoformat(body["to"]) <= timezone.now()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"severity": "apocalyptic"}, "severity"),
        ({"service": "nope"}, "service"),
        ({"from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"}, "from"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "from"),
        ({"to": "soon"}, "to"),
    ],
)
def test_bad_stats_parameters_are_400_naming_them(viewer_api, params, field):
    response = viewer_api.get("/api/incidents/stats/", params)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_the_api_root_links_incidents(viewer_api):
    assert viewer_api.get("/api/").json()["incidents"].endswith("/api/incidents/")


# --- review fixes: audit values, closed incidents, a broker outage, input PostgreSQL refuses ----


def test_status_changes_are_audited_with_the_status_they_left(operator_api, incident):
    operator_api.post(url(incident, "status"), {"status": "investigating"})
    operator_api.post(url(incident, "resolve"), {})
    operator_api.post(url(incident, "status"), {"status": "investigating"})  # reopens

    changes = [a.changes.get("status") for a in audits(incident.pk).exclude(action="create")]
    assert changes == [["new", "investigating"], ["investigating", "resolved"],
                       ["resolved", "investigating"]]  # fmt: skip


def test_a_closed_incident_cannot_be_assigned_but_takes_comments(operator_api, incident):
    actions.incident_resolve(incident=incident)
    actions.incident_close(incident=incident, actor=None)
    before = written()

    response = operator_api.post(url(incident, "assign"), {"assignee": None})

    assert response.status_code == 409, response.content
    assert response.json()["message"] == "A closed incident cannot be assigned."
    assert written() == before
    assert operator_api.post(url(incident, "comment"), {"message": "postmortem"}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_after_commit_does_not_fail_the_acknowledgement(
    client_as, make_service, monkeypatch, caplog
):
    from kombu.exceptions import OperationalError

    from incidents import delivery
    from incidents.models import NotificationChannel, NotificationDelivery
    from incidents.tasks import deliver

    delivery.channel_save(
        actor=None,
        channel=NotificationChannel(
            name="hook", kind="webhook", url="https://hooks.example.test/", is_default=True
        ),
    )
    incident = actions.incident_create_manual(
        actor=None, service=make_service(), title="down", severity="high"
    )

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis. Connection refused.")

    monkeypatch.setattr(deliver, "apply_async", broker_down)

    response = client_as("operator").post(url(incident, "acknowledge"))

    assert response.status_code == 200, response.content
    assert Incident.objects.get(pk=incident.pk).acknowledged_at is not None
    # The delivery waits as pending for the sweeper; the outage is in the log.
    assert NotificationDelivery.objects.filter(event__kind="acknowledged").get().status == "pending"
    assert "Connection refused" in caplog.text


def test_stats_with_a_range_before_year_one_is_a_400(viewer_api):
    response = viewer_api.get("/api/incidents/stats/", {"to": "0001-01-05T00:00:00Z"})
    assert response.status_code == 400
    assert "to" in response.json()["errors"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/incidents/stats/?service=%00",
        "/api/incidents/active/?service=a%00b",
        "/api/incidents/?search=%00",
    ],
)
def test_a_nul_in_the_query_string_is_a_400(viewer_api, path):
    response = viewer_api.get(path)
    assert response.status_code == 400
    assert response.json()["message"] == "NUL characters (%00) are not accepted in the URL."


def test_a_nul_in_a_json_body_is_a_400_naming_the_field(client_as, make_service):
    admin = client_as("admin")
    before = written()
    response = admin.post(
        "/api/incidents/", {"service": "\x00", "title": "t", "severity": "high"}, format="json"
    )
    assert response.status_code == 400
    assert "service" in response.json()["errors"]
    assert written() == before


def test_a_nul_in_a_channel_header_is_refused(client_as):
    response = client_as("admin").post(
        "/api/notification-channels/",
        {"name": "h", "kind": "webhook", "url": "https://hooks.example.test/",
         "headers": {"X-A": "a\x00b"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert "headers" in response.json()["errors"]
