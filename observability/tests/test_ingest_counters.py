"""The ingestion counters on /metrics: items stored by signal, rejected by reason, requests
refused by code, shared by every process through Redis."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from observability.tests.test_api import bearer
from observability.tests.test_otlp_metrics import export

pytestmark = pytest.mark.django_db


def scrape(client) -> dict[tuple[str, tuple], float]:
    body = client.get("/metrics").content.decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name.startswith("noc_ingest_")
    }


def sample(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_points_log_lines_rejections_and_refusals_are_counted(client, make_application):
    _, key = make_application("shop")
    before = scrape(client)
    now = time.time()
    points = [{"name": "up", "value": 1, "time": now}, {"name": "up", "value": 2, "time": now - 1},
              {"name": "bad name", "value": 1}]  # fmt: skip
    ingest = bearer(key).post("/api/metrics/ingest", {"points": points}, format="json")
    assert ingest.status_code == 200
    assert (
        bearer(key).post("/v1/metrics", export(), content_type="application/x-protobuf").status_code
        == 200
    )
    logs = bearer(key).post("/api/logs/ingest", {"logs": [{"message": "hello"}]}, format="json")
    assert logs.status_code == 200
    refused = bearer(key).generic("POST", "/api/metrics/ingest", b"x", content_type="text/plain")
    assert refused.status_code == 415
    otlp_refused = bearer(key).generic(
        "POST", "/v1/metrics", b"\xff\xff", content_type="application/x-protobuf"
    )
    assert otlp_refused.status_code == 400
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("noc_ingest_points_total") == 2 + 8
    assert delta("noc_ingest_log_lines_total") == 1
    assert delta("noc_ingest_rejected_total", signal="metrics", reason="invalid_name") == 1
    assert (
        delta("noc_ingest_requests_refused_total", signal="metrics", code="unsupported_media_type")
        == 1
    )
    assert delta("noc_ingest_requests_refused_total", signal="metrics", code="invalid") == 1
    assert ("noc_ingest_spans_total", ()) in after


def test_spans_their_rejections_and_refusals_are_counted(client, make_application):
    from observability.tests.traces_fixtures import export as export_spans
    from observability.tests.traces_fixtures import span

    _, key = make_application("traced")
    before = scrape(client)
    body = export_spans(span("b7ad6b7169203331"), span("00f067aa0ba902b7"),
                        span("00f067aa0ba902b8", seconds_ago=40 * 86_400))  # fmt: skip
    protobuf = "application/x-protobuf"
    stored = bearer(key).generic("POST", "/v1/traces", body, content_type=protobuf)
    assert stored.status_code == 200
    refused = bearer(key).generic("POST", "/v1/traces", b"\xff", content_type=protobuf)
    assert refused.status_code == 400
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("noc_ingest_spans_total") == 2
    assert delta("noc_ingest_rejected_total", signal="spans", reason="too_old") == 1
    assert delta("noc_ingest_requests_refused_total", signal="spans", code="invalid") == 1
    assert delta("noc_ingest_requests_refused_total", signal="logs", code="invalid") == 0
