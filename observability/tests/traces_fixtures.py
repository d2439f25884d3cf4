"""Building OTLP trace export requests in tests: spans by hex ids, times relative to now."""

from __future__ import annotations

import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def value(item) -> AnyValue:
    if isinstance(item, bool):
        return AnyValue(bool_value=item)
    if isinstance(item, int):
        return AnyValue(int_value=item)
    if isinstance(item, float):
        return AnyValue(double_value=item)
    return AnyValue(string_value=item)


def pairs(attributes: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=value(v)) for k, v in attributes.items()]


def span(
    span_id: str, name: str = "GET /", *, trace: str = TRACE, parent: str = "",
    seconds_ago: float = 5.0, duration: float = 0.1, kind: int = Span.SPAN_KIND_SERVER,
    status: int = Status.STATUS_CODE_UNSET, message: str = "", attributes: dict | None = None,
) -> Span:  # fmt: skip
    start = int((time.time() - seconds_ago) * 1e9)
    found = Span(
        trace_id=bytes.fromhex(trace), span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent), name=name, kind=kind,
        start_time_unix_nano=start, end_time_unix_nano=start + int(duration * 1e9),
        status=Status(code=status, message=message),
    )  # fmt: skip
    found.attributes.extend(pairs(attributes or {}))
    return found


def export(*spans: Span, service: str = "checkout", scope: str = "shop.web") -> bytes:
    return request_of(*spans, service=service, scope=scope).SerializeToString()


def request_of(
    *spans: Span, service: str = "checkout", scope: str = "shop.web"
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        pairs({"service.name": service, "deployment.environment": "prod"})
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope
    scope_spans.spans.extend(spans)
    return request
