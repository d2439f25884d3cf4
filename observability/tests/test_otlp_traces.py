"""POST /v1/traces: OTLP/HTTP spans in protobuf and JSON (gzip accepted), answered in OTLP's
form, scoped by ingest keys, limits refusing the whole request with nothing written."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from accounts.actions import api_key_create
from observability.actions import ingest_key_revoke
from observability.models import Span
from observability.tests.test_api import bearer
from observability.tests.traces_fixtures import OTHER_TRACE, TRACE, export, request_of, span

pytestmark = pytest.mark.django_db
URL = "/v1/traces"


def post(client, body: bytes, content_type: str = "application/x-protobuf", url=URL, **headers):
    return client.generic("POST", url, body, content_type=content_type, **headers)


def message_of(response) -> str:
    if response["Content-Type"] == "application/x-protobuf":
        return status_pb2.Status.FromString(response.content).message
    return response.json()["message"]


def test_protobuf_spans_are_stored_with_their_resource_events_and_links(make_application):
    application, key = make_application("shop")
    root = span("b7ad6b7169203331", "GET /checkout", attributes={"http.status_code": 500},
                status=Status.STATUS_CODE_ERROR, message="boom",
                duration=0.25)  # fmt: skip
    child = span("00f067aa0ba902b7", "SELECT orders", parent="b7ad6b7169203331",
                 kind=OtlpSpan.SPAN_KIND_CLIENT, seconds_ago=4.9)  # fmt: skip
    event = root.events.add(time_unix_nano=root.start_time_unix_nano + 1000, name="exception")
    event.attributes.add(key="exception.type").value.string_value = "ValueError"
    link = root.links.add(trace_id=bytes.fromhex(OTHER_TRACE),
                          span_id=bytes.fromhex("00f067aa0ba902b8"))  # fmt: skip
    link.attributes.add(key="why").value.string_value = "retry"
    response = post(bearer(key), gzip.compress(export(root, child)), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    stored = Span.objects.get(span_id="b7ad6b7169203331")
    assert (stored.trace_id, stored.parent_span_id, stored.name, stored.kind) == (
        TRACE, "", "GET /checkout", "server",
    )  # fmt: skip
    assert (stored.application_id, stored.service) == (application.pk, "checkout")
    assert (stored.status_code, stored.status_message) == ("error", "boom")
    assert stored.duration_us == 250_000
    assert (stored.end_time - stored.start_time).total_seconds() == 0.25
    assert stored.attributes == {
        "http.status_code": 500, "resource": {"deployment.environment": "prod"},
        "scope": "shop.web",
    }  # fmt: skip
    assert stored.events[0]["name"] == "exception"
    assert stored.events[0]["attributes"] == {"exception.type": "ValueError"}
    assert stored.links == [
        {"trace_id": OTHER_TRACE, "span_id": "00f067aa0ba902b8", "attributes": {"why": "retry"}}
    ]
    child_row = Span.objects.get(span_id="00f067aa0ba902b7")
    assert (child_row.parent_span_id, child_row.kind, child_row.status_code) == (
        "b7ad6b7169203331", "client", "unset",
    )  # fmt: skip
    assert (child_row.events, child_row.links) == ([], [])


def test_a_batch_sent_twice_is_stored_once(make_application):
    _, key = make_application("shop")
    body = export(span("b7ad6b7169203331"), span("00f067aa0ba902b7", parent="b7ad6b7169203331"))
    for _ in range(2):
        assert post(bearer(key), body).status_code == 200
    assert Span.objects.count() == 2


def test_a_json_batch_written_by_hand_is_understood(make_user, make_application):
    """OTLP/JSON as a person writes it: hex ids, enum names, nanoseconds as strings."""
    make_application("shop")
    _, key = api_key_create(actor=None, user=make_user("operator"), name="pusher")
    now = time.time_ns()
    document = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [
            {"traceId": TRACE, "spanId": "b7ad6b7169203331", "name": "POST /orders",
             "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": str(now - 3_000_000),
             "endTimeUnixNano": str(now), "status": {"code": "STATUS_CODE_OK"},
             "attributes": [{"key": "http.route", "value": {"stringValue": "/orders"}}]},
            {"traceId": TRACE.upper(), "spanId": "00F067AA0BA902B7",
             "parentSpanId": "b7ad6b7169203331", "name": "INSERT", "kind": 3,
             "startTimeUnixNano": str(now - 2_000_000), "endTimeUnixNano": str(now - 1_000_000)},
        ]}]}]}  # fmt: skip
    response = post(bearer(key), json.dumps(document).encode(), "application/json",
                    url=f"{URL}?application=shop")  # fmt: skip
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}
    root, child = Span.objects.order_by("start_time")
    assert (root.name, root.kind, root.status_code, root.service) == (
        "POST /orders", "server", "ok", "api",
    )  # fmt: skip
    assert root.duration_us == 3000
    assert (child.trace_id, child.span_id, child.parent_span_id, child.kind) == (
        TRACE, "00f067aa0ba902b7", "b7ad6b7169203331", "client",
    )  # fmt: skip


def test_spans_outside_the_retention_are_a_partial_success(make_application):
    _, key = make_application("shop")
    body = export(span("b7ad6b7169203331", seconds_ago=40 * 86400), span("00f067aa0ba902b7"))
    response = post(bearer(key), body)
    assert response.status_code == 200
    reply = ExportTraceServiceResponse.FromString(response.content)
    assert reply.partial_success.rejected_spans == 1
    assert "outside what is kept" in reply.partial_success.error_message
    assert list(Span.objects.values_list("span_id", flat=True)) == ["00f067aa0ba902b7"]


def _with(**changes) -> bytes:
    """A valid span and one changed by `changes` (a function of the span): the whole request
    must be refused."""
    good, bad = span("b7ad6b7169203331"), span("00f067aa0ba902b7")
    for change in changes.values():
        change(bad)
    return export(good, bad)


def _many_attributes(s):
    for n in range(129):
        s.attributes.add(key=f"a{n}").value.int_value = n


def _set(**fields):
    def change(s):
        for name, value in fields.items():
            setattr(s, name, value)

    return change


def _long_attribute(s):
    s.attributes.add(key="sql").value.string_value = "x" * 5000


def _nested_long_attribute(s):
    s.attributes.add(key="list").value.array_value.values.add().string_value = "y" * 5000


def _nan_attribute(s):
    s.attributes.add(key="ratio").value.double_value = float("nan")


def _nul_attribute(s):
    s.attributes.add(key="note").value.string_value = "a\x00b"


def _nul_event_key(s):
    event = s.events.add(time_unix_nano=s.start_time_unix_nano, name="e")
    event.attributes.add(key="k\x00").value.int_value = 1


def _many_events(s):
    for _ in range(129):
        s.events.add(time_unix_nano=s.start_time_unix_nano, name="tick")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", 400, "cannot be decoded"),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"[]", "application/json", 400, "export request object"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
         "application/json", 400, "malformed"),
        (b"x", "text/plain", 415, "not OTLP/HTTP"),
        (_with(c=_set(trace_id=b"\x00" * 16)), "application/x-protobuf", 400,
         "spans[1].traceId"),
        (_with(c=_set(span_id=b"\x01\x02")), "application/x-protobuf", 400, "spans[1].spanId"),
        (_with(c=_set(parent_span_id=b"\x01")), "application/x-protobuf", 400,
         "spans[1].parentSpanId"),
        (_with(c=_set(start_time_unix_nano=0)), "application/x-protobuf", 400,
         "start time is required"),
        (_with(c=_set(end_time_unix_nano=1)), "application/x-protobuf", 400,
         "ends before it starts"),
        (_with(c=_many_attributes), "application/x-protobuf", 400, "TRACES_MAX_ATTRIBUTES"),
        (_with(c=_long_attribute), "application/x-protobuf", 400, "TRACES_MAX_ATTRIBUTE_LENGTH"),
        (_with(c=_nested_long_attribute), "application/x-protobuf", 400,
         "attributes.list[0]"),
        (_with(c=_set(name="n" * 5000)), "application/x-protobuf", 400, "spans[1].name"),
        (_with(c=_set(name="nul \x00 here")), "application/x-protobuf", 400, "NUL"),
        (_with(c=_nan_attribute), "application/x-protobuf", 400, "not a finite number"),
        (_with(c=_many_events), "application/x-protobuf", 400, "TRACES_MAX_EVENTS"),
        (_with(c=_nul_attribute), "application/x-protobuf", 400, "attributes.note"),
        (_with(c=_nul_event_key), "application/x-protobuf", 400, "events"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_in_otlp_form_and_write_nothing(
    make_application, body, content_type, status, words
):
    _, key = make_application("shop")
    response = post(bearer(key), body, content_type)
    assert response.status_code == status, response.content
    assert words in message_of(response)
    assert not Span.objects.exists()


def test_a_lone_surrogate_in_json_is_refused(make_application):
    _, key = make_application("shop")
    now = time.time_ns()
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": TRACE, "spanId": "b7ad6b7169203331", "name": "bad \ud800 text",
        "startTimeUnixNano": str(now - 1000), "endTimeUnixNano": str(now)}]}]}]}  # fmt: skip
    body = json.dumps(document).encode()  # ASCII, with the surrogate as an escape
    response = post(bearer(key), body, "application/json")
    assert 400 <= response.status_code < 500, response.content
    assert not Span.objects.exists()


def test_body_and_span_count_limits_are_413(make_application, settings):
    _, key = make_application("shop")
    settings.INGEST_MAX_ITEMS = 2
    body = export(*(span(f"{n + 1:016x}") for n in range(3)))
    response = post(bearer(key), body)
    assert response.status_code == 413
    assert "INGEST_MAX_ITEMS" in message_of(response)
    settings.INGEST_MAX_BODY_BYTES = 100
    response = post(bearer(key), export(span("b7ad6b7169203331", attributes={"x": "y" * 200})))
    assert response.status_code == 413
    assert "INGEST_MAX_BODY_BYTES" in message_of(response)
    assert not Span.objects.exists()


def test_scoping_by_ingest_key_and_role(make_application, make_user):
    _, key = make_application("shop")
    make_application("other")
    body = export(span("b7ad6b7169203331"))
    refused = post(bearer(key), body, url=f"{URL}?application=other")
    assert refused.status_code == 403
    assert "writes to application 'shop' only" in message_of(refused)
    _, viewer_key = api_key_create(actor=None, user=make_user("viewer"), name="v")
    assert post(bearer(viewer_key), body, url=f"{URL}?application=shop").status_code == 403
    _, operator_key = api_key_create(actor=None, user=make_user("operator"), name="o")
    unknown = post(bearer(operator_key), body, url=f"{URL}?application=nope")
    assert unknown.status_code == 400
    assert "Unknown application 'nope'" in message_of(unknown)
    unnamed = post(bearer(operator_key), body)
    assert unnamed.status_code == 400
    assert not Span.objects.exists()
    from observability.models import IngestKey

    ingest_key_revoke(actor=None, ingest_key=IngestKey.objects.get(application__slug="shop"))
    revoked = post(bearer(key), body)
    assert revoked.status_code == 401
    assert "revoked" in message_of(revoked)
    assert post(bearer(operator_key), body, url=f"{URL}?application=other").status_code == 200
    assert Span.objects.get().application.slug == "other"


def test_an_empty_request_is_accepted(make_application):
    _, key = make_application("shop")
    response = post(bearer(key), ExportTraceServiceRequest().SerializeToString())
    assert response.status_code == 200
    assert not Span.objects.exists()


def test_the_resource_without_a_service_name_leaves_it_blank(make_application):
    _, key = make_application("shop")
    request = request_of(span("b7ad6b7169203331"))
    del request.resource_spans[0].resource.attributes[:]
    assert post(bearer(key), request.SerializeToString()).status_code == 200
    stored = Span.objects.get()
    assert (stored.service, stored.attributes) == ("", {"scope": "shop.web"})


def test_text_that_only_looks_like_an_escaped_nul_is_stored(make_application):
    _, key = make_application("shop")
    body = export(span("b7ad6b7169203331", attributes={"pattern": "\\u0000 is NUL in JSON"}))
    assert post(bearer(key), body).status_code == 200
    assert Span.objects.get().attributes["pattern"] == "\\u0000 is NUL in JSON"


def test_a_span_name_longer_than_its_column_is_refused_whatever_the_text_limit(
    make_application, settings
):
    settings.TRACES_MAX_ATTRIBUTE_LENGTH = 10_000
    _, key = make_application("shop")
    response = post(bearer(key), export(span("b7ad6b7169203331", "n" * 4097)))
    assert response.status_code == 400
    assert "spans[0].name: 4097 characters, more than the limit of 4096" in message_of(response)
    assert post(bearer(key), export(span("b7ad6b7169203331", "n" * 4096))).status_code == 200
