"""The collectors API: definitions, the seed's start/stop/status, run history, bad input."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from collectors.models import Collector, CollectorRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client_as) -> APIClient:
    return client_as("admin")


@pytest.fixture
def operator(client_as) -> APIClient:
    return client_as("operator")


def new_collector(**fields) -> dict:
    return {"name": "node", "kind": "prometheus", "application": "shop",
            "url": "http://127.0.0.1:9100/metrics", "interval_seconds": 15,
            "allow_private": True, **fields}  # fmt: skip


def test_an_admin_creates_a_collector_whose_token_is_never_shown_back(admin, application):
    response = admin.post("/api/collectors/", new_collector(token="s3cret"), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert "token" not in body and body["has_token"] is True
    assert "s3cret" not in str(admin.get(f"/api/collectors/{body['id']}/").json())
    stored = Collector.objects.get()
    assert stored.token and "s3cret" not in stored.token
    event = AuditEvent.objects.get(target_type="collectors.collector", action="create")
    assert "s3cret" not in str(event.changes)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "snmp"}, "kind"),
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({"url": "http://127.0.0.1:9100/", "allow_private": False}, "url"),
        ({"kind": "http_json", "json_paths": {"depth": "$.[[["}}, "json_paths"),
        ({"kind": "http_json", "json_paths": {}}, "json_paths"),
        ({"kind": "ohlcv", "url": "http://127.0.0.1/{symbol}", "price_path": "$.price",
          "symbol": "eth usdt", "timeframe": "1m"}, "symbol"),
        ({"kind": "ohlcv", "url": "http://127.0.0.1/{symbol}", "price_path": "$.price",
          "symbol": "ETHUSDT", "timeframe": "2m"}, "timeframe"),
        ({"kind": "ohlcv", "url": "http://127.0.0.1/p", "price_path": "$.price",
          "symbol": "ETHUSDT", "timeframe": "1m"}, "url"),
        ({"extra_labels": {"__name__": "x"}}, "extra_labels"),
        ({"metric_allow": "up"}, "metric_allow"),
        ({"bearer_token_env": "not a name"}, "bearer_token_env"),
        ({"bearer_token_env": "SECRET_KEY"}, "bearer_token_env"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
    ],
)  # fmt: skip
def test_a_bad_definition_is_a_400_naming_the_field_and_nothing_is_saved(
    admin, application, fields, field
):
    response = admin.post("/api/collectors/", new_collector(**fields), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not Collector.objects.exists()
    assert not AuditEvent.objects.filter(target_type="collectors.collector").exists()


def test_a_patch_without_token_keeps_it_and_an_empty_one_removes_it(admin, application):
    created = admin.post("/api/collectors/", new_collector(token="t"), format="json").json()
    url = f"/api/collectors/{created['id']}/"
    assert admin.patch(url, {"interval_seconds": 30}, format="json").json()["has_token"] is True
    assert admin.patch(url, {"token": ""}, format="json").json()["has_token"] is False


@pytest.fixture
def price_settings(settings, application):
    settings.COLLECTOR_OHLCV_URL = "http://127.0.0.1:9/price?symbol={symbol}"
    settings.COLLECTOR_APPLICATION = application.slug


def test_the_seeds_start_status_and_stop(operator, price_settings):
    response = operator.post(
        "/api/collectors/start", {"symbol": "ETHUSDT", "timeframe": "1m"}, format="json"
    )
    assert response.status_code == 201, response.content
    started = response.json()
    assert started["message"] == "Collector started for ETHUSDT on timeframe 1m"
    assert started["pid"] is None and started["id"] == CollectorRun.objects.get().pk
    collector = Collector.objects.get()
    assert (collector.kind, collector.symbol, collector.timeframe) == ("ohlcv", "ETHUSDT", "1m")

    again = operator.post(
        "/api/collectors/start", {"symbol": "ETHUSDT", "timeframe": "1m"}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "conflict" and again.json()["id"] == started["id"]
    assert f"run {started['id']}" in again.json()["message"]

    now = timezone.now()
    CollectorRun.objects.update(started_at=now - timedelta(seconds=90), last_heartbeat_at=now)
    status = operator.get("/api/collectors/status").json()["collectors"]
    assert [(r["id"], r["symbol"], r["timeframe"], r["status"]) for r in status] == [
        (started["id"], "ETHUSDT", "1m", "running")
    ]
    assert 90 <= status[0]["uptime"] < 100

    stopped = operator.post("/api/collectors/stop", {"id": started["id"]}, format="json")
    assert stopped.status_code == 200
    assert (
        stopped.json()["message"] == "Collector stopped." and stopped.json()["id"] == started["id"]
    )
    gone = operator.post("/api/collectors/stop", {"id": started["id"]}, format="json")
    assert gone.status_code == 404
    assert gone.json() == {"message": "Collector not found or already stopped.",
                           "code": "not_found", "id": started["id"]}  # fmt: skip
    assert operator.get("/api/collectors/status").json() == {"collectors": []}
    verbs = AuditEvent.objects.filter(target_type="collectors.collectorrun").values_list(
        "verb", "actor_label"
    )
    assert sorted(verbs) == [("start", "operator-1"), ("stop", "operator-1")]


def test_a_second_start_of_the_same_symbol_reuses_its_collector(operator, price_settings):
    body = {"symbol": "BTCUSDT", "timeframe": "5m"}
    first = operator.post("/api/collectors/start", body, format="json").json()
    operator.post("/api/collectors/stop", {"id": first["id"]}, format="json")
    second = operator.post("/api/collectors/start", body, format="json").json()
    assert second["collector"] == first["collector"] and Collector.objects.count() == 1


def test_stop_by_pid_stops_the_runs_that_worker_last_executed(operator, make_collector):
    runs = [
        CollectorRun.objects.create(collector=make_collector(url="http://127.0.0.1:9/"), pid=pid)
        for pid in (4242, 4242, 777)
    ]
    response = operator.post("/api/collectors/stop", {"pid": 4242}, format="json")
    assert response.status_code == 200
    assert sorted(response.json()["stopped"]) == [runs[0].pk, runs[1].pk]
    assert CollectorRun.objects.get(pk=runs[2].pk).status == "running"
    missing = operator.post("/api/collectors/stop", {"pid": 4242}, format="json")
    assert (missing.status_code, missing.json()["pid"]) == (404, 4242)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("start", {"symbol": "eth/usdt", "timeframe": "1m"}, "symbol"),
        ("start", {"symbol": "A" * 21, "timeframe": "1m"}, "symbol"),
        ("start", {"symbol": "ETHUSDT", "timeframe": "2h"}, "timeframe"),
        ("start", {"symbol": "ETHUSDT"}, "timeframe"),
        ("start", {}, "symbol"),
        ("start", {"collector": 999999}, "collector"),
        ("stop", {"pid": -3}, "pid"),
        ("stop", {"pid": "abc"}, "pid"),
        ("stop", {"pid": 0}, "pid"),
        ("stop", {"id": 1.5}, "id"),
        ("stop", {}, "non_field_errors"),
    ],
)
def test_bad_start_and_stop_bodies_are_400s_and_start_nothing(operator, path, body, field):
    response = operator.post(f"/api/collectors/{path}", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not CollectorRun.objects.exists() and not Collector.objects.exists()


def test_starting_a_disabled_collector_is_a_409(operator, make_collector):
    collector = make_collector(url="http://127.0.0.1:9/", enabled=False)
    response = operator.post("/api/collectors/start", {"collector": collector.pk}, format="json")
    assert response.status_code == 409 and "disabled" in response.json()["message"]


def test_status_marks_a_run_without_heartbeat_dead_before_answering(operator, make_collector):
    collector = make_collector(url="http://127.0.0.1:9/", interval_seconds=10, timeout_seconds=2)
    run = CollectorRun.objects.create(
        collector=collector, last_heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    [shown] = operator.get("/api/collectors/status").json()["collectors"]
    assert (shown["id"], shown["status"]) == (run.pk, "error")
    assert "no heartbeat for 300 s" in shown["last_error"]


def test_runs_history_filters(client_as, make_collector):
    a = make_collector(url="http://127.0.0.1:9/")
    b = make_collector(url="http://127.0.0.1:9/", kind="http_json", json_paths={"x": "$.x"})
    CollectorRun.objects.create(collector=a, status="stopped", stopped_at=timezone.now())
    running = CollectorRun.objects.create(collector=a)
    CollectorRun.objects.create(collector=b, status="error")
    viewer = client_as("viewer")
    ids = [r["id"] for r in viewer.get("/api/collectors/runs/?status=running").json()["results"]]
    assert ids == [running.pk]
    kinds = viewer.get("/api/collectors/runs/?kind=http_json").json()["results"]
    assert [r["collector"] for r in kinds] == [b.pk]
    assert viewer.get("/api/collectors/runs/?status=nope").status_code == 400
    detail = viewer.get(f"/api/collectors/runs/{running.pk}/").json()
    assert detail["collector_name"] == a.name


def test_the_api_root_and_schema_list_collectors(client_as):
    assert "collectors" in client_as("viewer").get("/api/").json()
    schema = client_as("viewer").get("/api/schema/?format=json").json()
    for path in ("/api/collectors/start", "/api/collectors/stop", "/api/collectors/status",
                 "/api/collectors/", "/api/collectors/runs/"):  # fmt: skip
        assert path in schema["paths"], path


@pytest.mark.django_db(transaction=True)
def test_two_racing_starts_give_one_201_and_one_409(make_user, make_collector):
    """Each start in its own thread and database connection, released together: the partial
    unique index lets exactly one insert through."""
    collector = make_collector(url="http://127.0.0.1:9/")
    user = make_user("operator")
    for _round in range(5):
        barrier, codes = threading.Barrier(2), []

        def start(barrier: threading.Barrier = barrier, codes: list = codes) -> None:
            client = APIClient()
            client.force_authenticate(user)
            barrier.wait()
            response = client.post(
                "/api/collectors/start", {"collector": collector.pk}, format="json"
            )
            codes.append(response.status_code)
            connection.close()

        threads = [threading.Thread(target=start) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(codes) == [201, 409]
        assert CollectorRun.objects.filter(status="running").count() == 1
        CollectorRun.objects.update(status="stopped", stopped_at=timezone.now())


@pytest.mark.parametrize("path", ["/api/collectors/", "/api/collectors/runs/",
                                  "/api/collectors/status"])  # fmt: skip
def test_lists_take_the_same_queries_for_few_and_many_rows(client_as, make_collector, path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    viewer = client_as("viewer")

    def queries_for(count: int) -> int:
        for _ in range(count):
            collector = make_collector(url="http://127.0.0.1:9/")
            CollectorRun.objects.create(collector=collector, last_heartbeat_at=timezone.now())
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(path).status_code == 200
        return len(captured)

    assert queries_for(2) == queries_for(8)
