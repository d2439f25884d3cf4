"""What the span store takes: `SpanRecord`, with times in microseconds since the Unix epoch and
its JSON columns already encoded (the decoder checked them while encoding)."""

from __future__ import annotations

from typing import NamedTuple


class SpanRecord(NamedTuple):
    trace_id: str  # 32 lowercase hexadecimal digits
    span_id: str  # 16
    parent_span_id: str  # 16, or "" for a root span
    name: str
    kind: str  # a SpanKind value
    application_id: int
    service: str
    start_us: int
    end_us: int
    status_code: str  # a SpanStatus value
    status_message: str = ""
    attributes: bytes | None = None  # JSON text; None is {}
    events: bytes | None = None  # JSON text; None is []
    links: bytes | None = None  # JSON text; None is []
