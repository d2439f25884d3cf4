"""The real OpenTelemetry Python SDK against a live server over HTTP: its span exporter posts
to /v1/traces with an ingest key, and its spans are found through the trace API with a user's
key; a JSON batch written by hand takes the same way. (The SDK's metrics half is
test_otlp_metrics_sdk.py.)"""

from __future__ import annotations

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from accounts.actions import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reader(make_user):
    """GET over HTTP as a viewer with a user API key."""
    _, key = api_key_create(actor=None, user=make_user("viewer"), name="reader")

    def get(url: str, **params) -> dict:
        response = requests.get(
            url, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    return get


def test_sdk_spans_are_found_through_the_trace_api(live_server, make_application, reader):
    _, key = make_application("sdk-shop")
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {key}"},
        compression=Compression.Gzip,
        timeout=10,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-checkout"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("noc.tests.sdk")
    with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/checkout")
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT) as child:
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "card declined"))
    assert provider.force_flush(10_000)
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")

    listed = reader(f"{live_server.url}/api/traces/", application="sdk-shop")["results"]
    assert [row["trace_id"] for row in listed] == [trace_id]
    assert (listed[0]["span_count"], listed[0]["error_count"]) == (2, 1)
    assert listed[0]["root"]["name"] == "GET /checkout"
    assert listed[0]["root"]["service"] == "sdk-checkout"
    assert reader(f"{live_server.url}/api/traces/", status="error")["results"][0]["trace_id"] == (
        trace_id
    )

    trace = reader(listed[0]["url"])
    (top,) = trace["spans"]
    assert (top["name"], top["kind"], top["orphan"]) == ("GET /checkout", "server", False)
    assert top["attributes"]["http.route"] == "/checkout"
    assert top["attributes"]["scope"] == "noc.tests.sdk"
    (charge,) = top["children"]
    assert (charge["name"], charge["kind"]) == ("charge card", "client")
    assert charge["status"] == {"code": "error", "message": "card declined"}
    assert charge["events"][0]["name"] == "retry"
    assert charge["events"][0]["attributes"] == {"attempt": 2}
    assert charge["parent_span_id"] == top["span_id"]
    assert trace["logs"].endswith(f"/api/logs/search?trace_id={trace_id}")


def test_a_json_batch_pushed_by_hand_over_http_is_found(live_server, make_application, reader):
    """OTLP/JSON as written by hand (hex ids, enum names, gzip), as curl would send it."""
    import gzip
    import json
    import time

    _, key = make_application("json-shop")
    now = time.time_ns()
    trace_id = "5b8efff798038103d269b633813fc60c"
    document = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cron"}}]},
        "scopeSpans": [{"scope": {"name": "by-hand"}, "spans": [
            {"traceId": trace_id, "spanId": "eee19b7ec3c1b174", "name": "nightly export",
             "kind": "SPAN_KIND_INTERNAL", "startTimeUnixNano": str(now - 5_000_000_000),
             "endTimeUnixNano": str(now), "status": {"code": "STATUS_CODE_OK"}},
            {"traceId": trace_id, "spanId": "eee19b7ec3c1b175", "parentSpanId": "eee19b7ec3c1b174",
             "name": "upload", "kind": "SPAN_KIND_CLIENT",
             "startTimeUnixNano": str(now - 4_000_000_000), "endTimeUnixNano": str(now - 10**9),
             "attributes": [{"key": "bytes", "value": {"intValue": "1048576"}}]},
        ]}]}]}  # fmt: skip
    response = requests.post(
        f"{live_server.url}/v1/traces",
        data=gzip.compress(json.dumps(document).encode()),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                 "Content-Encoding": "gzip"},
        timeout=10,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json() == {}
    trace = reader(f"{live_server.url}/api/traces/{trace_id}/")
    (top,) = trace["spans"]
    assert (top["name"], top["service"], top["duration_ms"]) == ("nightly export", "cron", 5000)
    (upload,) = top["children"]
    assert (upload["name"], upload["kind"], upload["attributes"]["bytes"]) == (
        "upload", "client", 1048576,
    )  # fmt: skip
