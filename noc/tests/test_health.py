from __future__ import annotations

import socket
import time

import pytest

from noc import health

pytestmark = pytest.mark.django_db


def test_live_answers_without_touching_dependencies(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_ready_reports_each_dependency_with_latency(client):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert set(checks) == {"database", "migrations", "redis", "cache", "broker"}
    for name, result in checks.items():
        assert result["status"] == "ok", (name, result)
        assert result["latency_ms"] >= 0
    assert checks["database"]["detail"].startswith("PostgreSQL ")


def test_ready_is_503_and_names_redis_when_redis_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"


def test_ready_checks_elasticsearch_when_configured(client, settings):
    settings.ELASTICSEARCH_URL = "http://127.0.0.1:1"
    body = client.get("/health/ready").json()
    assert body["checks"]["elasticsearch"]["status"] == "down"


def test_responses_carry_a_request_id_and_keep_a_well_formed_incoming_one(client):
    assert len(client.get("/health/live").headers["X-Request-ID"]) == 32
    echoed = client.get("/health/live", HTTP_X_REQUEST_ID="abc-123")
    assert echoed.headers["X-Request-ID"] == "abc-123"
    forged = client.get("/health/live", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert forged.headers["X-Request-ID"] != "bad id\nwith newline"


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers: a hung PostgreSQL or Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def test_ready_probes_a_separate_cache_server(client, settings):
    settings.CACHES = {
        "default": settings.CACHES["default"] | {"LOCATION": "redis://127.0.0.1:1/1"}
    }
    body = client.get("/health/ready").json()
    assert body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["redis"]["status"] == "ok"
    assert body["status"] == "down"


def test_ready_probes_a_separate_result_store(client, settings):
    settings.CELERY_RESULT_BACKEND = "redis://127.0.0.1:1/3"
    body = client.get("/health/ready").json()
    assert body["checks"]["results"]["status"] == "down"


def test_ready_answers_within_seconds_when_postgres_and_redis_hang(
    client, settings, silent_server, monkeypatch
):
    from django.db import connection

    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connection.settings_dict, "PORT", silent_server)
    settings.REDIS_URL = f"redis://127.0.0.1:{silent_server}/0"
    started = time.monotonic()
    response = client.get("/health/ready")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["status"] == "down"
    assert checks["redis"]["status"] == "down"
    assert checks["migrations"]["detail"] == "not checked: the database is down"
    assert elapsed < health.TIMEOUT_SECONDS + 2, elapsed
