"""Decoding `POST /api/logs/ingest`: `{"application": slug?, "logs": [{"time"?, "level"?,
"message", "service"?, "host"?, "trace_id"?, "span_id"?, "attributes"?}]}` into `LogRecord`s.

A malformed document or line is refused whole (400 naming the field, 413 for a line over
LOG_MAX_LINE_BYTES), so nothing is half-written; a time outside what is kept (older than the
retention, more than 10 minutes ahead) rejects that line only and is counted in the answer,
as metric points are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from noc.api.parsers import MAX_JSON_DEPTH
from noc.storable import first_unstorable
from observability.ingestion import IngestError, check_item_count
from observability.logs.records import (
    OUR_LEVELS,
    LogRecord,
    attributes_json_text,
    level_of,
    make_record,
    new_uid,
)
from observability.points import FUTURE_US, IngestResult, to_us

LINE_FIELDS = frozenset(
    {"time", "level", "message", "service", "host", "trace_id", "span_id", "attributes"}
)
TRACE_ID = re.compile(r"[0-9a-f]{32}")
SPAN_ID = re.compile(r"[0-9a-f]{16}")
MAX_SERVICE = 200
MAX_HOST = 255


@dataclass
class LogLimits:
    max_line_bytes: int
    max_attributes: int
    retention_us: int

    @classmethod
    def from_settings(cls) -> LogLimits:
        return cls(
            max_line_bytes=settings.LOG_MAX_LINE_BYTES,
            max_attributes=settings.LOG_MAX_ATTRIBUTES,
            retention_us=settings.LOG_RETENTION_DAYS * 86_400_000_000,
        )


@dataclass
class LogBatch:
    application: str | None
    lines: list[dict[str, Any]]


def decode_json_logs(body: bytes) -> LogBatch:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestError(400, "parse_error", f"The body is not valid JSON: {exc}.") from exc
    except RecursionError as exc:
        raise IngestError(
            400, "parse_error", f"The body is nested deeper than {MAX_JSON_DEPTH} levels."
        ) from exc
    if not isinstance(document, dict):
        raise IngestError(400, "invalid", "The body must be a JSON object.")
    unknown = set(document) - {"application", "logs"}
    if unknown:
        field = sorted(unknown)[0]
        raise IngestError(400, "invalid", f"Unknown field {field!r}.", field)
    lines = document.get("logs")
    if not isinstance(lines, list):
        raise IngestError(400, "invalid", "A list of log lines is required.", "logs")
    check_item_count(len(lines), "logs")
    application = document.get("application")
    if application is not None and not isinstance(application, str):
        raise IngestError(400, "invalid", "The application must be a slug.", "application")
    return LogBatch(application, lines)


def records_of(
    lines: list[Any],
    *,
    application_id: int,
    application: str,
    now_us: int,
    result: IngestResult,
    limits: LogLimits | None = None,
) -> list[LogRecord]:
    """Check every line (a bad one refuses the request) and build the records of those whose
    time is kept; the others are counted in `result`."""
    limits = limits or LogLimits.from_settings()
    oldest, newest = now_us - limits.retention_us, now_us + FUTURE_US
    records = []
    for index, item in enumerate(lines):
        record = _line(item, index, application_id, application, now_us, limits)
        if record.time_us < oldest:
            result.reject("too_old", f"logs[{index}]: time is older than the retention")
        elif record.time_us > newest:
            result.reject("too_new", f"logs[{index}]: time is more than 10 minutes ahead")
        else:
            records.append(record)
    return records


def _line(
    item: Any, index: int, application_id: int, application: str, now_us: int, limits: LogLimits
) -> LogRecord:
    """One line checked and made a record. Tens of thousands a second go through here: the
    usual line (a short ASCII message, a level spelled as ours, optional fields absent) takes
    the shortest path, and a field's name is only formatted for an error."""
    if type(item) is not dict:
        raise IngestError(400, "invalid", "Each log line must be an object.", f"logs[{index}]")
    if not item.keys() <= LINE_FIELDS:
        field = sorted(item.keys() - LINE_FIELDS)[0]
        raise _bad(index, field, f"unknown field {field!r}")
    get = item.get
    message = get("message")
    if type(message) is not str:
        raise _bad(index, "message", "a message (string) is required")
    if not message.isascii() or len(message) > limits.max_line_bytes or "\x00" in message:
        check_message(message, f"logs[{index}].message", limits.max_line_bytes)
    time = get("time")
    time_us = now_us if time is None else _time_us(time, index)
    level = get("level", "info")
    known = OUR_LEVELS.get(level) if type(level) is str else None
    if known is None:
        known = level_of(level) if type(level) is str else None
        if known is None:
            raise _bad(index, "level", f"{str(level)[:20]!r} is not a level (trace, debug, "
                       "info, warn, error, fatal)")  # fmt: skip
    attributes = get("attributes")
    attributes_json = b""
    if attributes:
        attributes_json = usual_attributes_json(
            attributes, limits.max_attributes
        ) or check_attributes(attributes, f"logs[{index}].attributes", limits.max_attributes)
    elif attributes is not None and type(attributes) is not dict:
        raise _bad(index, "attributes", "attributes must be an object")
    service, host, trace_id, span_id = get("service"), get("host"), get("trace_id"), get("span_id")
    return make_record(LogRecord, (
        new_uid(time_us),
        time_us,
        application_id,
        known,
        message,
        "" if service is None else _short(service, index, "service", MAX_SERVICE),
        "" if host is None else _short(host, index, "host", MAX_HOST),
        ""
        if trace_id is None or trace_id == ""
        else _hex_id(trace_id, index, "trace_id", TRACE_ID, 32),
        "" if span_id is None or span_id == "" else _hex_id(span_id, index, "span_id", SPAN_ID, 16),
        attributes or None,
        application,
        attributes_json,
    ))  # fmt: skip


def check_message(message: str, field: str, max_bytes: int) -> None:
    """Refuse a message over the limit or one PostgreSQL cannot store."""
    if message.isascii():
        size = len(message)
    else:
        try:
            size = len(message.encode())
        except UnicodeEncodeError as exc:
            raise IngestError(400, "invalid", f"{field}: not valid Unicode text.", field) from exc
    if size > max_bytes:
        raise IngestError(
            413, "line_too_large",
            f"{field}: {size} bytes, more than the limit of {max_bytes} (LOG_MAX_LINE_BYTES).",
            field,
        )  # fmt: skip
    if "\x00" in message:
        raise IngestError(400, "invalid", f"{field}: NUL characters are not accepted.", field)


def usual_attributes_json(attributes: Any, max_attributes: int) -> bytes:
    """The usual line's attributes (an object within the limit, storable as they are) as the
    UTF-8 JSON the store writes; b"" for anything else, which `check_attributes` then judges
    and names. The decoders' inner loops call this first: the field's name, formatted for
    every line, cost a third of the check."""
    if type(attributes) is not dict or len(attributes) > max_attributes:
        return b""
    try:
        text = attributes_json_text(attributes)
        data = text.encode()
    except (ValueError, UnicodeEncodeError):  # NaN or infinity; a lone surrogate
        return b""
    return data if "\\u0000" not in text else b""  # JSON writes a NUL as \u0000


def check_attributes(attributes: Any, field: str, max_attributes: int) -> bytes:
    """Refuse attributes PostgreSQL cannot store (a NUL, a number that is not finite, text
    that is not valid Unicode); return them as the UTF-8 JSON the store writes."""
    if type(attributes) is not dict:
        raise IngestError(400, "invalid", f"{field}: attributes must be an object.", field)
    if len(attributes) > max_attributes:
        raise IngestError(
            400, "invalid",
            f"{field}: {len(attributes)} attributes, more than the limit of {max_attributes} "
            "(LOG_MAX_ATTRIBUTES).",
            field,
        )  # fmt: skip
    try:
        text = attributes_json_text(attributes)
        data = text.encode()
    except (ValueError, UnicodeEncodeError):  # NaN or infinity; a lone surrogate
        text, data = "", b""
    if data and "\\u0000" not in text:  # JSON writes a NUL as \u0000
        return data
    found = first_unstorable(attributes, field)
    if found:
        raise IngestError(400, "invalid", found[1], found[0])
    if not data:
        raise IngestError(400, "invalid", f"{field}: not valid Unicode text.", field)
    return data  # "\u0000" was text, not a NUL


def _short(value: Any, index: int, name: str, limit: int) -> str:
    if type(value) is not str or len(value) > limit or "\x00" in value:
        raise _bad(index, name, f"a text of at most {limit} characters")
    return value


def _hex_id(value: Any, index: int, name: str, pattern: re.Pattern, digits: int) -> str:
    if type(value) is not str or not pattern.fullmatch(value.lower()):
        raise _bad(index, name, f"{digits} hexadecimal digits")
    return value.lower()


def _time_us(value: Any, index: int) -> int:
    if type(value) is float or type(value) is int:
        if not (0 <= value < 1e11):
            raise _bad(index, "time", "epoch seconds out of range")
        return round(value * 1_000_000)
    if type(value) is str:
        try:
            return to_us(datetime.fromisoformat(value))
        except ValueError as exc:
            raise _bad(index, "time", f"{value[:40]!r} is not an ISO 8601 time") from exc
    raise _bad(index, "time", "time must be ISO 8601 or epoch seconds")


def _bad(index: int, field: str, message: str) -> IngestError:
    path = f"logs[{index}].{field}"
    return IngestError(400, "invalid", f"{path}: {message}.", path)
