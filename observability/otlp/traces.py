"""OTLP traces: an `ExportTraceServiceRequest` (protobuf or OTLP/JSON, decoded by
`observability.otlp.logs.parse`) into `SpanRecord`s.

Each span keeps its resource's `service.name` as the service, its ids in lowercase hex, its
kind and status as our choices, its events (time, name, attributes) and links (trace and span
ids, attributes) as JSON, and its attributes, with the resource's other attributes under
`resource` and the scope's name under `scope` (as log records do). A span the limits refuse
(ids, times, attribute count or text length, events or links per span, unstorable text)
refuses the request with a 400 naming it, as /v1/logs does; one whose start is not kept
(older than TRACES_RETENTION_DAYS, more than 10 minutes ahead) is counted as rejected
(OTLP's partial success).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from noc.storable import first_unstorable
from observability.choices import SpanKind, SpanStatus
from observability.ingestion import IngestError, check_item_count
from observability.otlp.logs import any_value
from observability.points import FUTURE_US, IngestResult, from_us
from observability.traces.records import SpanRecord

KINDS = tuple(SpanKind.values)  # OTLP's SpanKind numbers 0-5
STATUSES = tuple(SpanStatus.values)  # OTLP's Status.StatusCode numbers 0-2
MAX_SERVICE = 200
MAX_NAME = 4096  # the column's size, whatever TRACES_MAX_ATTRIBUTE_LENGTH says


@dataclass(frozen=True)
class SpanLimits:
    max_attributes: int
    max_text: int
    max_events: int
    retention_us: int

    @classmethod
    def from_settings(cls) -> SpanLimits:
        return cls(
            max_attributes=settings.TRACES_MAX_ATTRIBUTES,
            max_text=settings.TRACES_MAX_ATTRIBUTE_LENGTH,
            max_events=settings.TRACES_MAX_EVENTS,
            retention_us=settings.TRACES_RETENTION_DAYS * 86_400_000_000,
        )


def spans_of(
    request, *, application, now_us: int, result: IngestResult, limits: SpanLimits | None = None
) -> list[SpanRecord]:
    limits = limits or SpanLimits.from_settings()
    count = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
    check_item_count(count, "spans")
    oldest, newest = now_us - limits.retention_us, now_us + FUTURE_US
    records, index = [], -1
    for resource_spans in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
        service = str(resource.pop("service.name", None) or "")[:MAX_SERVICE]
        _check_lengths(resource, "resourceSpans.resource.attributes", limits.max_text)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                index += 1
                where = f"resourceSpans.spans[{index}]"
                start_us, end_us = _times(span, where)
                if start_us < oldest or start_us > newest:
                    reason = "too_old" if start_us < oldest else "too_new"
                    result.reject(reason, f"{where}: start time is outside what is kept")
                    continue
                attributes = _attributes(span.attributes, f"{where}.attributes", limits)
                if resource:
                    attributes["resource"] = resource
                if scope:
                    attributes["scope"] = scope
                records.append(
                    SpanRecord(
                        trace_id=_id(span.trace_id, 16, f"{where}.traceId"),
                        span_id=_id(span.span_id, 8, f"{where}.spanId"),
                        parent_span_id=_id(span.parent_span_id, 8, f"{where}.parentSpanId",
                                           optional=True),
                        name=_name(span.name, f"{where}.name", limits),
                        kind=KINDS[span.kind] if 0 <= span.kind < len(KINDS) else KINDS[0],
                        application_id=application.pk,
                        service=service,
                        start_us=start_us,
                        end_us=end_us,
                        status_code=_status(span.status.code),
                        status_message=_text(
                            span.status.message, f"{where}.status.message", limits.max_text
                        ),
                        attributes=_json(attributes, f"{where}.attributes"),
                        events=_events(span.events, f"{where}.events", limits),
                        links=_links(span.links, f"{where}.links", limits),
                    )
                )  # fmt: skip
    return records


def _times(span, where: str) -> tuple[int, int]:
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not start:
        raise _bad(f"{where}.startTimeUnixNano", "a start time is required")
    if not end:
        raise _bad(f"{where}.endTimeUnixNano", "an end time is required")
    if end < start:
        raise _bad(f"{where}.endTimeUnixNano", "the span ends before it starts")
    return start // 1000, end // 1000


def _id(raw: bytes, size: int, where: str, *, optional: bool = False) -> str:
    if optional and not raw:
        return ""
    if len(raw) != size or not any(raw):
        raise _bad(where, f"{size} bytes, not all zero ({size * 2} hexadecimal digits in JSON)")
    return raw.hex()


def _status(code: int) -> str:
    return STATUSES[code] if 0 <= code < len(STATUSES) else STATUSES[0]


def _text(value: str, where: str, limit: int, why: str = "TRACES_MAX_ATTRIBUTE_LENGTH") -> str:
    if len(value) > limit:
        raise _bad(where, f"{len(value)} characters, more than the limit of {limit} ({why})")
    if "\x00" in value:
        raise _bad(where, "NUL characters are not accepted")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:  # a lone surrogate from a JSON escape
            raise _bad(where, "not valid Unicode text") from exc
    return value


def _name(value: str, where: str, limits: SpanLimits) -> str:
    if limits.max_text <= MAX_NAME:
        return _text(value, where, limits.max_text)
    return _text(value, where, MAX_NAME, "the most a span name may have")


def _attributes(pairs, where: str, limits: SpanLimits) -> dict[str, Any]:
    """Attributes as JSON values, their count and text lengths checked (NUL, NaN and
    encodability are checked once on the whole span's JSON, by `_json`)."""
    if len(pairs) > limits.max_attributes:
        raise _bad(
            where, f"{len(pairs)} attributes, more than the limit of {limits.max_attributes} "
            "(TRACES_MAX_ATTRIBUTES)"
        )  # fmt: skip
    limit = limits.max_text
    attributes = {}
    for kv in pairs:
        key, value = kv.key, any_value(kv.value)
        kind = type(value)
        if len(key) > limit or (kind is str and len(value) > limit):
            _check_lengths({key: value}, where, limit)
        elif kind is list or kind is dict:
            _check_lengths(value, f"{where}.{key[:40]}", limit)
        attributes[key] = value
    return attributes


def _check_lengths(value: Any, where: str, limit: int) -> None:
    """Every text in an attribute value (nested arrays and maps too) and every key."""
    if isinstance(value, str):
        _text(value, where, limit)
    elif isinstance(value, dict):
        for key, item in value.items():
            _text(key, f"{where}.{key[:40]}", limit)
            _check_lengths(item, f"{where}.{key[:40]}", limit)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _check_lengths(item, f"{where}[{position}]", limit)


def _events(events, where: str, limits: SpanLimits) -> bytes | None:
    if not events:
        return None
    _check_count(len(events), where, limits.max_events, "events")
    found = []
    for position, event in enumerate(events):
        here = f"{where}[{position}]"
        item = {
            "time": from_us(event.time_unix_nano // 1000).isoformat(),
            "name": _text(event.name, f"{here}.name", limits.max_text),
        }
        if event.attributes:
            item["attributes"] = _attributes(event.attributes, f"{here}.attributes", limits)
        found.append(item)
    return _json(found, where)


def _links(links, where: str, limits: SpanLimits) -> bytes | None:
    if not links:
        return None
    _check_count(len(links), where, limits.max_events, "links")
    found = []
    for position, link in enumerate(links):
        here = f"{where}[{position}]"
        item = {
            "trace_id": _id(link.trace_id, 16, f"{here}.traceId"),
            "span_id": _id(link.span_id, 8, f"{here}.spanId"),
        }
        if link.attributes:
            item["attributes"] = _attributes(link.attributes, f"{here}.attributes", limits)
        found.append(item)
    return _json(found, where)


def _check_count(count: int, where: str, limit: int, what: str) -> None:
    if count > limit:
        raise _bad(where, f"{count} {what}, more than the limit of {limit} (TRACES_MAX_EVENTS)")


def _json(value: Any, where: str) -> bytes | None:
    """The JSON text COPY writes as jsonb (None: empty), refusing what PostgreSQL cannot store
    (NUL, NaN or infinity, text that is not Unicode)."""
    if not value:
        return None
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or infinity: the walk below names it
        text = "\\u0000"
    if "\\u0000" in text:  # how JSON writes NUL (or the literal text): find out which
        found = first_unstorable(value, where)
        if found:
            raise IngestError(400, "invalid", found[1], found[0])
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise _bad(where, "not valid Unicode text") from exc


def _bad(where: str, message: str) -> IngestError:
    return IngestError(400, "invalid", f"{where}: {message}.", where)
