"""The services API: CRUD through the actions, validation, filters, results, uptime, check-now,
enable/disable and maintenance windows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEvent
from noc.models import RollupWatermark
from noc.timeseries.backend import TIMESCALE, table_backend
from services.models import CheckResult, MaintenanceWindow, Service
from services.tests.fixtures import ensure_partitions
from services.tests.fixtures import refresh_rollups as refresh_all
from services.timeseries import CHECK_RESULTS, ROLLUP_TABLE

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    return api_client


@pytest.fixture
def viewer_api(api_client, viewer_user):
    api_client.force_authenticate(viewer_user)
    return api_client


def audit_events(action: str, target_id: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_id=target_id))


def insert_results(service_id: str, rows: list[dict]) -> None:
    """Results written straight to the table (no state, no signals), partitions created."""
    times = [row["time"] for row in rows]
    for spec in (CHECK_RESULTS, ROLLUP_TABLE):
        ensure_partitions(spec, min(times), max(times) + timedelta(seconds=1))
    CheckResult.objects.bulk_create(
        CheckResult(service_id=service_id, **{"status": "up", **row}) for row in rows
    )


def refresh_rollups(since: timedelta = timedelta(days=1)) -> None:
    """Refresh the per-minute rollup from `since` ago (native: the watermark starts a day back;
    TimescaleDB: the real-time continuous aggregate needs nothing)."""
    RollupWatermark.objects.update_or_create(
        name="services_checkrollup", defaults={"upto": timezone.now() - since}
    )
    refresh_all("services_checkrollup")


# --- CRUD ---------------------------------------------------------------------------------------


def test_admin_creates_a_service_through_the_action_and_it_is_audited(admin_api, target):
    response = admin_api.post(
        "/api/services/",
        {
            "id": "api-gateway",
            "name": "API gateway",
            "url": f"{target}/ok",
            "tags": ["edge", "prod"],
            "interval_seconds": 30,
            "timeout_seconds": 5,
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] == "api-gateway"
    assert body["tags"] == ["edge", "prod"]
    assert body["status"] == "unknown"
    assert body["next_check_at"] is not None  # scheduled by service_create
    assert body["ping_url"] is None
    [event] = audit_events("create", "api-gateway")
    assert event.actor.username == "alice"
    assert event.changes["name"] == [None, "API gateway"]


def test_a_cron_schedule_replaces_the_default_interval(admin_api, target):
    response = admin_api.post(
        "/api/services/",
        {"id": "nightly", "name": "Nightly", "url": f"{target}/ok", "cron": "*/30 * * * * *"},
    )
    assert response.status_code == 201, response.content
    assert response.json()["interval_seconds"] is None
    assert response.json()["cron"] == "*/30 * * * * *"


def test_a_push_service_exposes_its_ping_url(admin_api):
    response = admin_api.post(
        "/api/services/", {"id": "backup", "name": "Nightly backup", "kind": "push"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    token = str(Service.objects.get(id="backup").ping_token)
    assert body["ping_token"] == token
    assert body["ping_url"] == f"http://testserver/ping/{token}"


def test_admin_updates_a_service_and_the_audit_holds_before_and_after(admin_api, make_service):
    service = make_service(id="web", name="Web")
    response = admin_api.patch("/api/services/web/", {"name": "Website", "interval_seconds": 120})
    assert response.status_code == 200, response.content
    service.refresh_from_db()
    assert (service.name, service.interval_seconds) == ("Website", 120)
    [event] = audit_events("update", "web")
    assert event.changes["name"] == ["Web", "Website"]
    assert event.changes["interval_seconds"] == [60, 120]


def test_the_id_cannot_be_changed_after_creation(admin_api, make_service):
    make_service(id="web")
    response = admin_api.patch("/api/services/web/", {"id": "renamed", "name": "Web 2"})
    assert response.status_code == 200
    assert Service.objects.filter(id="web", name="Web 2").exists()
    assert not Service.objects.filter(id="renamed").exists()


def test_admin_deletes_a_service_with_its_results(admin_api, make_service):
    make_service(id="old")
    insert_results("old", [{"time": timezone.now() - timedelta(minutes=1)}])
    response = admin_api.delete("/api/services/old/")
    assert response.status_code == 204
    assert not Service.objects.filter(id="old").exists()
    assert not CheckResult.objects.filter(service_id="old").exists()
    assert len(audit_events("delete", "old")) == 1


def test_a_service_created_again_under_a_deleted_id_starts_without_history(admin_api, make_service):
    make_service(id="old")
    now = timezone.now().replace(second=0, microsecond=0)
    insert_results("old", [{"time": now - timedelta(minutes=5 + i), "status": "down"} for i in
                           range(5)])  # fmt: skip
    refresh_rollups()
    refresh_all("services_checkrollup_hourly")
    assert admin_api.get("/api/services/old/uptime/").json()["checks"] == 5
    assert admin_api.delete("/api/services/old/").status_code == 204
    make_service(id="old")
    refresh_all()
    for window in ("24h", "30d"):
        body = admin_api.get("/api/services/old/uptime/", {"window": window}).json()
        assert (body["checks"], body["failures"]) == (0, 0), window
    with connection.cursor() as cursor:
        for table in ("services_checkrollup", "services_checkrollup_hourly"):
            if table_backend(cursor, table) != TIMESCALE:
                cursor.execute(f"SELECT count(*) FROM {table} WHERE service_id = 'old'")
                assert cursor.fetchone()[0] == 0, table


def test_a_duplicate_id_is_refused(admin_api, make_service):
    make_service(id="web")
    response = admin_api.post(
        "/api/services/", {"id": "web", "name": "Again", "url": "https://example.com/"}
    )
    assert response.status_code == 400
    assert "id" in response.json()["errors"]


BAD_INPUT = [
    ({"cron": "every tuesday"}, "cron"),
    ({"interval_seconds": 0}, "interval_seconds"),
    ({"interval_seconds": 10, "timeout_seconds": 30}, "timeout_seconds"),
    ({"kind": "gopher"}, "kind"),
    ({"url": "ftp://files.example.com/"}, "url"),
    ({"json_path": "$..["}, "json_path"),
    ({"kind": "tcp", "host": "db.example.com", "port": 70000, "url": ""}, "port"),
    ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),
    ({"url": "http://[::a9fe:a9fe]/latest/meta-data/"}, "url"),  # IPv4-compatible IPv6
    ({"kind": "tcp", "host": "::ffff:0:a9fe:a9fe", "port": 80, "url": ""}, "host"),
    ({"expected_status": [200, 999]}, "expected_status"),
    ({"headers": {"X-Retries": 3}}, "headers"),
    ({"kind": "tcp", "host": "db.example.com", "port": 5432, "headers": ["x"]}, "headers"),
    ({"headers": {"X-A": "b\r\nX-Injected: 1"}}, "headers"),
    ({"cron": "0 0 0 31 2 *"}, "cron"),
    ({"cron": "0 0 0 1 1 * 2001"}, "cron"),
    ({"interval_seconds": 3600, "timeout_seconds": 100, "retries": 2}, "timeout_seconds"),
]


@pytest.mark.parametrize(("change", "field"), BAD_INPUT, ids=[f for _, f in BAD_INPUT])
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_saved(admin_api, change, field):
    payload = {"id": "bad", "name": "Bad", "url": "https://example.com/", **change}
    audits = AuditEvent.objects.count()
    response = admin_api.post("/api/services/", payload)
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["errors"], body
    assert body["code"] == "invalid"
    assert body["message"]
    assert not Service.objects.filter(id="bad").exists()
    assert AuditEvent.objects.count() == audits


@pytest.mark.parametrize(("change", "field"), BAD_INPUT, ids=[f for _, f in BAD_INPUT])
def test_a_bad_update_leaves_the_service_unchanged(admin_api, make_service, change, field):
    service = make_service(id="web", name="Web")
    before = Service.objects.filter(id="web").values().get()
    response = admin_api.patch("/api/services/web/", {"name": "Changed", **change})
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert Service.objects.filter(id=service.id).values().get() == before
    assert not audit_events("update", "web")


def test_viewers_read_but_cannot_write(viewer_api, make_service):
    make_service(id="web")
    assert viewer_api.get("/api/services/web/").status_code == 200
    response = viewer_api.patch("/api/services/web/", {"name": "x"})
    assert response.status_code == 403
    assert "admin" in response.json()["message"]


# --- filters ------------------------------------------------------------------------------------


def ids_of(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [s["id"] for s in response.json()["results"]]


@pytest.fixture
def fleet(make_service):
    make_service(id="api", name="Public API", tags=["prod", "edge"], critical=True)
    make_service(id="db", name="Database", kind="tcp", host="127.0.0.1", port=5432, tags=["prod"])
    make_service(id="blog", name="Blog", description="marketing site", tags=["web"])
    make_service(id="beat", name="Cron heartbeat", kind="push", enabled=False)
    Service.objects.filter(id="db").update(status="down")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tags": "edge,web"}, ["api", "blog"]),
        ({"tags_all": "prod,edge"}, ["api"]),
        ({"tags": "prod"}, ["api", "db"]),
        ({"status": "down"}, ["db"]),
        ({"status": "paused"}, ["beat"]),
        ({"kind": "tcp"}, ["db"]),
        ({"enabled": "false"}, ["beat"]),
        ({"critical": "true"}, ["api"]),
        ({"search": "marketing"}, ["blog"]),
        ({"search": "DATA"}, ["db"]),
        ({"search": "bea"}, ["beat"]),
        ({"ordering": "-name", "tags": "prod"}, ["api", "db"]),
    ],
)
def test_services_are_filtered(viewer_api, fleet, params, expected):
    assert ids_of(viewer_api.get("/api/services/", params)) == expected


def test_an_unknown_filter_value_is_a_400(viewer_api, fleet):
    response = viewer_api.get("/api/services/", {"kind": "gopher", "status": "meh"})
    assert response.status_code == 400
    assert {"kind", "status"} <= set(response.json()["errors"])


def test_the_service_list_costs_the_same_queries_for_any_number_of_rows(
    viewer_api, make_service, django_assert_max_num_queries
):
    make_service()
    with CaptureQueriesContext(connection) as few:
        assert viewer_api.get("/api/services/").status_code == 200
    for _ in range(25):
        make_service(tags=["a", "b"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(viewer_api.get("/api/services/").json()["results"]) == 26


# --- results ------------------------------------------------------------------------------------


def test_results_are_paginated_newest_first_by_cursor(viewer_api, make_service):
    make_service(id="web")
    make_service(id="other")
    now = timezone.now().replace(microsecond=0)
    insert_results("web", [{"time": now - timedelta(minutes=i)} for i in range(1, 6)])
    insert_results("other", [{"time": now - timedelta(minutes=1)}])

    first = viewer_api.get("/api/services/web/results/", {"page_size": 2}).json()
    assert [r["time"] for r in first["results"]] == [
        (now - timedelta(minutes=i)).isoformat().replace("+00:00", "Z") for i in (1, 2)
    ]
    second = viewer_api.get(first["next"]).json()
    third = viewer_api.get(second["next"]).json()
    assert len(second["results"]) == 2
    assert len(third["results"]) == 1
    assert third["next"] is None
    assert set(first["results"][0]) >= {"status", "response_time_ms", "error", "details"}


def test_results_are_filtered_by_time_and_status(viewer_api, make_service):
    make_service(id="web")
    now = timezone.now().replace(microsecond=0)
    insert_results(
        "web",
        [
            {"time": now - timedelta(minutes=i), "status": "down" if i % 2 else "up"}
            for i in range(1, 11)
        ],
    )
    params = {
        "from": (now - timedelta(minutes=6)).isoformat(),
        "to": (now - timedelta(minutes=2)).isoformat(),
    }
    body = viewer_api.get("/api/services/web/results/", params).json()
    assert len(body["results"]) == 4  # minutes 6, 5, 4, 3: `to` is exclusive
    body = viewer_api.get("/api/services/web/results/", {**params, "status": "down"}).json()
    assert {r["status"] for r in body["results"]} == {"down"}
    assert len(body["results"]) == 2


def test_results_with_a_bad_time_are_a_400(viewer_api, make_service):
    make_service(id="web")
    response = viewer_api.get("/api/services/web/results/", {"from": "yesterday"})
    assert response.status_code == 400
    assert "from" in response.json()["errors"]


def test_results_of_an_unknown_service_are_a_404(viewer_api):
    assert viewer_api.get("/api/services/nope/results/").status_code == 404


# --- uptime -------------------------------------------------------------------------------------


@pytest.fixture
def history(make_service):
    """One hour of hand-countable results for `web`, one older result and a neighbour."""
    make_service(id="web")
    make_service(id="other")
    now = timezone.now().replace(second=0, microsecond=0)
    rows = [
        *({"status": "up", "response_time_ms": ms} for ms in (20, 40, 80, 120, 300, 700)),
        {"status": "degraded", "response_time_ms": 1500},
        {"status": "degraded", "response_time_ms": 3000},
        {"status": "down", "error": "503"},
        {"status": "down", "error": "timeout"},
        {"status": "down", "in_maintenance": True},
    ]
    insert_results(
        "web", [{**row, "time": now - timedelta(minutes=2 + i)} for i, row in enumerate(rows)]
    )
    insert_results(
        "web", [{"time": now - timedelta(days=3), "status": "up", "response_time_ms": 10}]
    )
    insert_results("other", [{"time": now - timedelta(minutes=5), "status": "down"}])
    refresh_rollups(since=timedelta(days=4))


def test_uptime_is_computed_from_the_rollups(viewer_api, history):
    body = viewer_api.get("/api/services/web/uptime/").json()
    assert body["window"] == "24h"
    assert body["checks"] == 10
    assert (body["up"], body["degraded"], body["failures"]) == (6, 2, 2)
    assert body["maintenance"] == 1
    assert body["uptime_percent"] == pytest.approx(80.0)
    assert body["response_time_avg_ms"] == pytest.approx(5760 / 8)
    assert (body["response_time_min_ms"], body["response_time_max_ms"]) == (20, 3000)
    # rank 0.95 * 8 = 7.6 lies in the 2500-5000 bucket (7th of 8 below it), narrowed to the
    # observed maximum 3000: 2500 + (3000 - 2500) * 0.6.
    assert body["response_time_p95_ms"] == pytest.approx(2800.0)


def test_a_longer_window_reaches_older_rollups(viewer_api, history):
    body = viewer_api.get("/api/services/web/uptime/", {"window": "7d"}).json()
    assert body["checks"] == 11
    assert body["uptime_percent"] == pytest.approx(9 / 11 * 100)
    assert body["response_time_min_ms"] == 10


def test_uptime_without_checks_is_null(viewer_api, make_service):
    make_service(id="new")
    body = viewer_api.get("/api/services/new/uptime/", {"window": "90d"}).json()
    assert body["checks"] == 0
    assert body["uptime_percent"] is None
    assert body["response_time_p95_ms"] is None


def test_an_unknown_window_is_a_400_naming_it(viewer_api, make_service):
    make_service(id="web")
    response = viewer_api.get("/api/services/web/uptime/", {"window": "1y"})
    assert response.status_code == 400
    assert "window" in response.json()["errors"]
    assert "1y" in response.json()["message"]


# --- check now, enable, disable -----------------------------------------------------------------


def test_an_operator_checks_a_service_now_against_a_real_server(
    api_client, operator_user, make_service
):
    make_service(id="web", allow_private=True)
    api_client.force_authenticate(operator_user)
    response = api_client.post("/api/services/web/check-now/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "up"
    assert body["status_code"] == 200
    assert body["response_time_ms"] > 0
    assert body["error"] == ""
    assert CheckResult.objects.filter(service_id="web", status="up").count() == 1
    [event] = audit_events("action", "web")
    assert (event.verb, event.actor) == ("check_now", operator_user)
    assert Service.objects.get(id="web").status == "up"


def test_check_now_reports_a_failing_target(admin_api, make_service):
    make_service("/down", id="web", allow_private=True)
    body = admin_api.post("/api/services/web/check-now/").json()
    assert (body["status"], body["status_code"]) == ("down", 503)
    assert "503" in body["error"]


def test_a_viewer_cannot_check_now(viewer_api, make_service):
    make_service(id="web")
    response = viewer_api.post("/api/services/web/check-now/")
    assert response.status_code == 403
    assert "operator" in response.json()["message"]
    assert not CheckResult.objects.filter(service_id="web").exists()


def test_a_push_service_cannot_be_checked_now(admin_api, make_service):
    make_service(id="beat", kind="push")
    response = admin_api.post("/api/services/beat/check-now/")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


@pytest.mark.parametrize(
    "request_",
    [
        ("put", "/api/services/web/", "same"),
        ("patch", "/api/services/web/", {"name": "Web 2", "enabled": True}),
        ("patch", "/api/services/web/", {"interval_seconds": 3600, "kind": "http"}),
        ("post", "/api/services/web/enable/", None),
    ],
    ids=["put", "patch", "patch-schedule", "enable"],
)
def test_a_schedule_written_unchanged_keeps_the_next_check(admin_api, make_service, request_):
    method, url, payload = request_
    make_service(id="web", interval_seconds=3600)
    before = Service.objects.get(id="web").next_check_at
    if payload == "same":
        payload = admin_api.get(url).json()
    response = getattr(admin_api, method)(url, payload, format="json")
    assert response.status_code == 200, response.content
    assert Service.objects.get(id="web").next_check_at == before


def test_a_changed_schedule_draws_a_new_next_check(admin_api, make_service):
    make_service(id="web", interval_seconds=3600)
    Service.objects.filter(id="web").update(next_check_at=timezone.now() + timedelta(hours=1))
    response = admin_api.patch("/api/services/web/", {"interval_seconds": 60}, format="json")
    assert response.status_code == 200, response.content
    assert Service.objects.get(id="web").next_check_at <= timezone.now() + timedelta(seconds=60)


def test_disable_then_enable(admin_api, make_service):
    make_service(id="web")
    body = admin_api.post("/api/services/web/disable/").json()
    assert (body["enabled"], body["status"], body["next_check_at"]) == (False, "paused", None)
    body = admin_api.post("/api/services/web/enable/").json()
    assert (body["enabled"], body["status"]) == (True, "unknown")
    assert body["next_check_at"] is not None
    changes = [e.changes["enabled"] for e in AuditEvent.objects.filter(target_id="web")
               .exclude(action="create").order_by("time")]  # fmt: skip
    assert changes == [[True, False], [False, True]]


# --- maintenance windows ------------------------------------------------------------------------


def test_admin_creates_a_one_off_window_for_some_services(admin_api, make_service):
    make_service(id="web")
    make_service(id="db")
    now = timezone.now()
    response = admin_api.post(
        "/api/maintenance-windows/",
        {
            "name": "DB upgrade",
            "services": ["web", "db"],
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    )
    assert response.status_code == 201, response.content
    window = MaintenanceWindow.objects.get(name="DB upgrade")
    assert sorted(window.services.values_list("id", flat=True)) == ["db", "web"]
    assert sorted(response.json()["services"]) == ["db", "web"]
    assert len(audit_events("create", str(window.pk))) == 1


def test_a_window_is_updated_with_a_new_service_list(admin_api, make_service):
    make_service(id="web")
    make_service(id="db")
    window = MaintenanceWindow.objects.create(
        name="nightly", cron="0 0 3 * * *", duration_minutes=30
    )
    window.services.add(Service.objects.get(id="web"))
    response = admin_api.patch(
        f"/api/maintenance-windows/{window.pk}/", {"services": ["db"], "duration_minutes": 45}
    )
    assert response.status_code == 200, response.content
    assert response.json()["services"] == ["db"]
    assert list(window.services.values_list("id", flat=True)) == ["db"]
    [event] = audit_events("update", str(window.pk))
    assert event.changes["duration_minutes"] == [30, 45]


def test_windows_are_filtered_by_service(viewer_api, make_service):
    make_service(id="web")
    window = MaintenanceWindow.objects.create(name="w", cron="0 0 3 * * *", duration_minutes=5)
    window.services.add(Service.objects.get(id="web"))
    MaintenanceWindow.objects.create(name="other", cron="0 0 4 * * *", duration_minutes=5)
    body = viewer_api.get("/api/maintenance-windows/", {"service": "web"}).json()
    assert [w["name"] for w in body["results"]] == ["w"]


def test_deleting_a_window_is_audited(admin_api):
    window = MaintenanceWindow.objects.create(name="w", cron="0 0 3 * * *", duration_minutes=5)
    assert admin_api.delete(f"/api/maintenance-windows/{window.pk}/").status_code == 204
    assert len(audit_events("delete", str(window.pk))) == 1


NOW = "2030-01-01T10:00:00Z"
LATER = "2030-01-01T11:00:00Z"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"starts_at": LATER, "ends_at": NOW}, "ends_at"),
        ({"starts_at": NOW, "ends_at": NOW}, "ends_at"),
        ({"starts_at": NOW}, "ends_at"),
        ({}, "starts_at"),
        ({"cron": "at three", "duration_minutes": 30}, "cron"),
        ({"cron": "0 0 0 31 2 *", "duration_minutes": 30}, "cron"),
        ({"cron": "0 0 0 1 1 * 2001", "duration_minutes": 30}, "cron"),
        ({"cron": "0 0 3 * * *", "duration_minutes": 0}, "duration_minutes"),
        ({"cron": "0 0 3 * * *"}, "duration_minutes"),
        ({"cron": "0 0 3 * * *", "duration_minutes": 5, "services": ["ghost"]}, "services"),
    ],
)
def test_an_invalid_window_is_a_400_naming_the_field(admin_api, make_service, payload, field):
    make_service(id="web")
    response = admin_api.post(
        "/api/maintenance-windows/", {"name": "bad", "services": ["web"], **payload}
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not MaintenanceWindow.objects.exists()


def test_a_patch_is_validated_against_the_stored_window(admin_api):
    window = MaintenanceWindow.objects.create(
        name="w", starts_at="2030-01-01T10:00:00Z", ends_at="2030-01-01T11:00:00Z"
    )
    response = admin_api.patch(
        f"/api/maintenance-windows/{window.pk}/", {"starts_at": "2030-01-01T12:00:00Z"}
    )
    assert response.status_code == 400
    assert "ends_at" in response.json()["errors"]


def test_the_api_root_lists_resolvable_services_links():
    from django.urls import reverse

    from noc.urls import top_level_routes

    routes = top_level_routes()
    assert routes["services"] == "service-list"
    assert routes["maintenance-windows"] == "maintenance-window-list"
    assert reverse("service-list") == "/api/services/"
    assert reverse("maintenance-window-list") == "/api/maintenance-windows/"
