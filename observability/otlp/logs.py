"""OTLP logs: an `ExportLogsServiceRequest` (protobuf or OTLP/JSON) into `LogRecord`s, and the
answers OTLP/HTTP expects (the export response, or a `google.rpc.Status` for a refusal), in the
encoding of the request.

Each record keeps its resource's `service.name` as the service and `host.name` as the host,
its body as the message (text as is, any other value as JSON), its severity as our level
(severity number first, then the text), its trace and span ids in hex, and its attributes,
with the resource's other attributes under `resource` and the scope's name under `scope`. A
record the limits refuse (message size, attribute count, unstorable text) refuses the request,
as the JSON API does; one whose time is not kept is counted as rejected (partial success).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from noc.api.parsers import too_deep
from observability.ingestion import IngestError, check_item_count
from observability.logs.decode import (
    LogLimits,
    check_attributes,
    check_message,
    usual_attributes_json,
)
from observability.logs.records import LogRecord, level_of, make_record, new_uid
from observability.points import FUTURE_US, IngestResult

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ENCODINGS = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}
MAX_DEPTH = 64
HTTP_TO_GRPC = {
    400: code_pb2.INVALID_ARGUMENT, 401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED, 413: code_pb2.INVALID_ARGUMENT,
    415: code_pb2.INVALID_ARGUMENT, 429: code_pb2.RESOURCE_EXHAUSTED,
}  # fmt: skip


# --- the two encodings -----------------------------------------------------------------------


def encoding_of(content_type: str) -> str:
    media = content_type.split(";")[0].strip().lower()
    try:
        return ENCODINGS[media]
    except KeyError:
        raise IngestError(
            415, "unsupported_media_type",
            f"Content-Type {media or '(none)'!r} is not OTLP/HTTP; send {PROTOBUF} or {JSON}.",
        ) from None  # fmt: skip


def parse(body: bytes, encoding: str, request: Message | None = None) -> Message:
    """The export request in `body` (logs unless another empty `request` is given). A malformed
    body is a 400. OTLP/JSON writes trace and span ids in hex, where protobuf's JSON mapping
    reads base64: they are converted first."""
    request = ExportLogsServiceRequest() if request is None else request
    if encoding == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise IngestError(
                400, "invalid", f"The protobuf body cannot be decoded: {exc}"
            ) from exc
        return request
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestError(400, "parse_error", f"The body is not valid JSON: {exc}.") from exc
    except RecursionError:
        document = None
    if document is None or too_deep(document, limit=MAX_DEPTH):
        raise IngestError(400, "parse_error", f"The body is nested deeper than {MAX_DEPTH} levels.")
    if not isinstance(document, dict):
        raise IngestError(400, "invalid", "The body must be an OTLP/JSON export request object.")
    try:
        json_format.ParseDict(_ids_to_base64(document), request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise IngestError(400, "invalid", f"The OTLP/JSON body is malformed: {exc}") from exc
    return request


_HEX = re.compile(r"[0-9a-fA-F]+")
ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


def _ids_to_base64(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _base64(item) if key in ID_FIELDS else _ids_to_base64(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_ids_to_base64(item) for item in value]
    return value


def _base64(value: Any) -> Any:
    if isinstance(value, str) and len(value) % 2 == 0 and _HEX.fullmatch(value):
        return base64.b64encode(bytes.fromhex(value)).decode()
    return value


def answer(message: Message, encoding: str) -> tuple[bytes, str]:
    if encoding == PROTOBUF:
        return message.SerializeToString(), PROTOBUF
    return json_format.MessageToJson(message, indent=None).encode(), JSON


def error_answer(exc: IngestError, encoding: str) -> tuple[bytes, str]:
    code = HTTP_TO_GRPC.get(exc.status, code_pb2.UNKNOWN)
    return answer(status_pb2.Status(code=code, message=exc.message), encoding)


def any_value(value) -> Any:
    """An OTLP AnyValue as JSON: str, bool, int, float, list, dict, or hex for bytes."""
    which = value.WhichOneof("value")
    if which in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(value, which)
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None


# --- records ---------------------------------------------------------------------------------

# OTLP severity numbers 1-24, four to a level.
SEVERITY_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
LEVEL_OF_NUMBER = (None, *(level for level in SEVERITY_LEVELS for _ in range(4)))
RESOURCE_FIELDS = {"service.name", "host.name"}
SCALARS = frozenset({"string_value", "bool_value", "int_value", "double_value"})


def level_of_record(number: int, text: str) -> str:
    if 1 <= number <= 24:
        return SEVERITY_LEVELS[(number - 1) // 4]
    return (level_of(text) if text else None) or "info"


_WHERE = "resourceLogs.logRecords"


def message_of(body) -> str:
    if body.WhichOneof("value") == "string_value":  # the usual body: text
        return body.string_value
    value = any_value(body)
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _hex(raw: bytes, size: int) -> str:
    return raw.hex() if len(raw) == size and any(raw) else ""


def records_of(
    request, *, application, now_us: int, result: IngestResult, limits: LogLimits | None = None
) -> list[LogRecord]:
    """The request's records, checked. Tens of thousands a second go through the inner loop:
    each protobuf field is read once (a read builds a Python object), the usual record (a text
    body, a severity number, scalar attributes) takes the shortest path, and a field's name is
    only formatted for an error."""
    limits = limits or LogLimits.from_settings()
    count = sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
    check_item_count(count, "log records")
    oldest, newest = now_us - limits.retention_us, now_us + FUTURE_US
    max_bytes, max_attributes = limits.max_line_bytes, limits.max_attributes
    application_id, slug = application.pk, application.slug
    records, index = [], -1
    append = records.append
    levels, scalars = LEVEL_OF_NUMBER, SCALARS
    for resource_logs in request.resource_logs:
        resource = {kv.key: any_value(kv.value) for kv in resource_logs.resource.attributes}
        service = str(resource.get("service.name") or "")[:200]
        host = str(resource.get("host.name") or "")[:255]
        extra = {k: v for k, v in resource.items() if k not in RESOURCE_FIELDS}
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope.name
            for record in scope_logs.log_records[:]:
                index += 1
                nanos = record.time_unix_nano or record.observed_time_unix_nano
                time_us = nanos // 1000 if nanos else now_us
                if time_us < oldest or time_us > newest:
                    reason = "too_old" if time_us < oldest else "too_new"
                    where = f"resourceLogs.logRecords[{index}]"
                    result.reject(reason, f"{where}: time is outside what is kept")
                    continue
                body = record.body
                message = body.string_value  # "" when the body is not text: then the detour
                if not message:
                    message = message_of(body)
                if not message.isascii() or len(message) > max_bytes or "\x00" in message:
                    check_message(message, f"{_WHERE}[{index}].body", max_bytes)
                attributes = {}
                pairs = record.attributes
                if pairs:
                    for kv in pairs[:]:  # a list: iterating the container raises IndexError
                        value = kv.value
                        which = value.WhichOneof("value")
                        attributes[kv.key] = (
                            getattr(value, which) if which in scalars else any_value(value)
                        )
                    if len(attributes) > max_attributes:
                        check_attributes(attributes, f"{_WHERE}[{index}].attributes",
                                         max_attributes)  # fmt: skip
                if extra:
                    attributes["resource"] = extra
                if scope:
                    attributes["scope"] = scope
                attributes_json = (
                    usual_attributes_json(attributes, max_attributes + 2)
                    or check_attributes(
                        attributes, f"{_WHERE}[{index}].attributes", max_attributes + 2
                    )
                    if attributes
                    else b""
                )
                number = record.severity_number
                level = levels[number] if 0 < number <= 24 else None
                if level is None:
                    level = level_of_record(number, record.severity_text)
                trace_id, span_id = record.trace_id, record.span_id
                append(make_record(LogRecord, (
                    new_uid(time_us), time_us, application_id, level, message, service, host,
                    _hex(trace_id, 16) if trace_id else "", _hex(span_id, 8) if span_id else "",
                    attributes or None, slug, attributes_json,
                )))  # fmt: skip
    return records
