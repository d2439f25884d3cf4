"""POST /v1/logs: OTLP/HTTP logs in protobuf and JSON (gzip accepted), answered in OTLP's form."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from accounts.actions import api_key_create
from observability.models import LogLine
from observability.tests.test_api import bearer

pytestmark = pytest.mark.django_db
URL = "/v1/logs"
TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN = bytes.fromhex("b7ad6b7169203331")


def export(*bodies: str, severity: int = 17, seconds_ago: float = 5, **extra) -> bytes:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend([
        KeyValue(key="service.name", value=AnyValue(string_value="checkout")),
        KeyValue(key="host.name", value=AnyValue(string_value="web-1")),
        KeyValue(key="deployment.environment", value=AnyValue(string_value="prod")),
    ])  # fmt: skip
    scope = resource_logs.scope_logs.add()
    scope.scope.name = "checkout.payments"
    for body in bodies:
        record = scope.log_records.add()
        record.time_unix_nano = int((time.time() - seconds_ago) * 1e9)
        record.severity_number = severity
        record.body.string_value = body
        record.trace_id, record.span_id = TRACE, SPAN
        record.attributes.append(KeyValue(key="order", value=AnyValue(int_value=42)))
        for key, value in extra.items():
            record.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    return request.SerializeToString()


def post(client, body: bytes, content_type: str = "application/x-protobuf", **headers):
    return client.generic("POST", URL, body, content_type=content_type, **headers)


def test_protobuf_records_are_stored_with_their_resource_and_ids(make_application):
    _, key = make_application("shop")
    response = post(bearer(key), gzip.compress(export("payment refused", "retrying")),
                    HTTP_CONTENT_ENCODING="gzip")  # fmt: skip
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-protobuf"
    reply = ExportLogsServiceResponse.FromString(response.content)
    assert not reply.HasField("partial_success")
    line = LogLine.objects.get(message="payment refused")
    assert (line.level, line.service, line.host) == ("error", "checkout", "web-1")
    assert (line.trace_id, line.span_id) == (TRACE.hex(), SPAN.hex())
    assert line.attributes == {
        "order": 42, "resource": {"deployment.environment": "prod"}, "scope": "checkout.payments",
    }  # fmt: skip


def test_otlp_json_with_hex_ids_is_understood(make_user, make_application):
    make_application("shop")
    _, key = api_key_create(actor=None, user=make_user("operator"), name="pusher")
    document = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "api"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": str(time.time_ns()), "severityText": "WARNING",
            "body": {"kvlistValue": {"values": [{"key": "event", "value": {"stringValue": "x"}}]}},
            "traceId": TRACE.hex(), "spanId": SPAN.hex(),
        }]}]}]}  # fmt: skip
    response = post(bearer(key), json.dumps(document).encode(), "application/json",
                    HTTP_X_NOC_APPLICATION="shop")  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json() == {}
    line = LogLine.objects.get()
    assert (line.level, line.service, line.message) == ("warn", "api", '{"event": "x"}')
    assert line.trace_id == TRACE.hex()


def test_records_outside_the_retention_are_a_partial_success(make_application):
    _, key = make_application("shop")
    body = export("ancient", seconds_ago=40 * 86400)
    request = ExportLogsServiceRequest.FromString(body)
    request.resource_logs[0].scope_logs[0].log_records.add().body.string_value = "now"
    response = post(bearer(key), request.SerializeToString())
    reply = ExportLogsServiceResponse.FromString(response.content)
    assert response.status_code == 200
    assert reply.partial_success.rejected_log_records == 1
    assert "outside what is kept" in reply.partial_success.error_message
    assert list(LogLine.objects.values_list("message", flat=True)) == ["now"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", 400, "cannot be decoded"),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"[]", "application/json", 400, "export request object"),
        (b"x", "text/plain", 415, "not OTLP/HTTP"),
        (export("x" * 70_000), "application/x-protobuf", 413, "LOG_MAX_LINE_BYTES"),
        (export("nul \x00 here"), "application/x-protobuf", 400, "NUL"),
    ],
)
def test_bad_requests_are_refused_in_otlp_form(make_application, body, content_type, status,
                                               words):  # fmt: skip
    _, key = make_application("shop")
    response = post(bearer(key), body, content_type)
    assert response.status_code == status, response.content
    if response["Content-Type"] == "application/x-protobuf":
        refusal = status_pb2.Status.FromString(response.content)
        message = refusal.message
    else:
        message = response.json()["message"]
    assert words in message
    assert not LogLine.objects.exists()


def test_an_unknown_key_is_a_401_in_otlp_form(db):
    response = post(bearer("noci_nothing_here"), export("x"))
    assert response.status_code == 401
    assert "Unknown ingest key" in status_pb2.Status.FromString(response.content).message


def test_every_field_of_a_record_on_the_short_path_and_off_it(application):
    from observability.logs.decode import LogLimits
    from observability.otlp.logs import records_of
    from observability.points import IngestResult

    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    cases = [
        (1, "", "trace"),
        (4, "", "trace"),
        (5, "", "debug"),
        (24, "", "fatal"),
        (25, "err", "error"),
        (0, "", "info"),
        (0, "notice", "info"),
        (-3, "crit", "fatal"),
    ]
    for number, text, _ in cases:
        record = records.add()
        record.time_unix_nano = time.time_ns()
        record.severity_number, record.severity_text = number, text
        record.body.string_value = f"severity {number}"
    odd = records.add()
    odd.observed_time_unix_nano = time.time_ns()  # no time: the observed one
    odd.body.int_value = 7
    odd.trace_id, odd.span_id = bytes(16), SPAN  # all zeros: no trace
    odd.attributes.extend([
        KeyValue(key="ok", value=AnyValue(bool_value=True)),
        KeyValue(key="ratio", value=AnyValue(double_value=0.5)),
        KeyValue(key="raw", value=AnyValue(bytes_value=b"\x01\x02")),
        KeyValue(key="tags", value=AnyValue(array_value={"values": [AnyValue(int_value=1)]})),
        KeyValue(key="none", value=AnyValue()),
    ])  # fmt: skip
    limits = LogLimits(max_line_bytes=1000, max_attributes=5, retention_us=86_400_000_000)
    found = records_of(request, application=application, now_us=time.time_ns() // 1000,
                       result=IngestResult(), limits=limits)  # fmt: skip
    assert [r.level for r in found[:-1]] == [level for _, _, level in cases]
    last = found[-1]
    assert (last.message, last.trace_id, last.span_id) == ("7", "", SPAN.hex())
    assert last.attributes == {"ok": True, "ratio": 0.5, "raw": "0102", "tags": [1], "none": None}
    assert json.loads(last.attributes_json) == last.attributes

    odd.attributes.add(key="sixth", value=AnyValue(string_value="x"))
    with pytest.raises(Exception, match=r"logRecords\[8\]\.attributes: 6 attributes"):
        records_of(request, application=application, now_us=time.time_ns() // 1000,
                   result=IngestResult(), limits=limits)  # fmt: skip
