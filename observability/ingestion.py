"""The ingestion boundary, independent of Django's request object: who is writing for which
application, reading a (possibly gzipped) body within the size limit, and decoding the JSON
API's points. The API views and OTLP views are thin wrappers over these functions, so they
could be mounted on a leaner path unchanged.

Every refusal is an `IngestError` carrying an HTTP status, a code, a message and the field at
fault; each endpoint renders it in its own format.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

from noc.api.parsers import MAX_JSON_DEPTH, too_deep
from observability.choices import MetricKind
from observability.models import INGEST_KEY_PREFIX, Application, IngestKey
from observability.points import MetricPoint, to_us


@dataclass
class IngestError(Exception):
    status: int
    code: str
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return self.message


# --- who writes for which application -----------------------------------------------------------


def is_ingest_key(token: str) -> bool:
    return token.startswith(f"{INGEST_KEY_PREFIX}_")


def ingest_key_for(token: str) -> IngestKey:
    """The active ingest key of a bearer token, or a 401. Looked up on every ingest request
    (a revoked key is refused at once), with SQL written once: the ORM compiled the same
    select_related query on each, 40% of a 1,000-line request's overhead in the web process."""
    with connection.cursor() as cursor:
        cursor.execute(_INGEST_KEY_SQL, [IngestKey.hash(token)])
        row = cursor.fetchone()
    key = None
    if row is not None:
        split = len(_KEY_FIELDS)
        key = IngestKey.from_db(connection.alias, _KEY_FIELDS, row[:split])
        key.application = Application.from_db(connection.alias, _APPLICATION_FIELDS, row[split:])
    if key is None:
        raise IngestError(401, "authentication_failed", "Unknown ingest key.")
    if key.revoked_at is not None:
        raise IngestError(401, "authentication_failed", "This ingest key has been revoked.")
    return key


_KEY_FIELDS = [f.attname for f in IngestKey._meta.concrete_fields]
_APPLICATION_FIELDS = [f.attname for f in Application._meta.concrete_fields]
_INGEST_KEY_SQL = "SELECT {}, {} FROM {} k JOIN {} a ON a.{} = k.{} WHERE k.{} = %s".format(
    ", ".join(f'k."{f.column}"' for f in IngestKey._meta.concrete_fields),
    ", ".join(f'a."{f.column}"' for f in Application._meta.concrete_fields),
    IngestKey._meta.db_table,
    Application._meta.db_table,
    Application._meta.pk.column,
    IngestKey._meta.get_field("application").column,
    IngestKey._meta.get_field("hashed_key").column,
)


def application_for(*, ingest_key: IngestKey | None, named: str | None) -> Application:
    """The application a request writes to. An ingest key writes to its own application only
    (naming it is optional); a person or a user API key (operator or above, checked by the
    caller) must name one."""
    if ingest_key is not None:
        own = ingest_key.application
        if named not in (None, "", own.slug):
            raise IngestError(
                403,
                "permission_denied",
                f"This ingest key writes to application {own.slug!r} only, not {named!r}.",
                "application",
            )
        return own
    if not named:
        raise IngestError(
            400,
            "invalid",
            "Name the application to write to (an ingest key names it by itself).",
            "application",
        )
    if not isinstance(named, str):
        raise IngestError(400, "invalid", "The application must be a slug.", "application")
    application = Application.objects.filter(slug=named).first()
    if application is None:
        raise IngestError(400, "invalid", f"Unknown application {named!r}.", "application")
    return application


# --- the body ----------------------------------------------------------------------------------


def read_body(
    read: Callable[[int], bytes],
    *,
    content_length: int | None,
    content_encoding: str = "",
    limit: int | None = None,
) -> bytes:
    """Read a request body through `read(n)`, refusing more than `limit` bytes (compressed or
    not) with a 413, and undoing `Content-Encoding: gzip` or `deflate`."""
    limit = limit or settings.INGEST_MAX_BODY_BYTES
    if content_length is not None and content_length > limit:
        raise _too_large(limit)
    body = read(limit + 1) if content_length is None else read(content_length)
    if len(body) > limit:
        raise _too_large(limit)
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise IngestError(
            415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported; "
            "send gzip, deflate or none."
        )  # fmt: skip
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise IngestError(400, "invalid", f"The {encoding} body cannot be decompressed.") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise _too_large(limit, decompressed=True)
    if not inflater.eof:
        raise IngestError(400, "invalid", f"The {encoding} body is truncated.")
    return data


def _too_large(limit: int, decompressed: bool = False) -> IngestError:
    what = "decompressed body" if decompressed else "body"
    return IngestError(
        413,
        "body_too_large",
        f"The {what} is larger than the limit of {limit} bytes (INGEST_MAX_BODY_BYTES); "
        "send smaller batches.",
    )


def check_item_count(count: int, what: str = "points") -> None:
    limit = settings.INGEST_MAX_ITEMS
    if count > limit:
        raise IngestError(
            413,
            "too_many_items",
            f"{count} {what} in one request, more than the limit of {limit} (INGEST_MAX_ITEMS); "
            "send smaller batches.",
            what,
        )


# --- the JSON API ------------------------------------------------------------------------------


@dataclass
class JsonBatch:
    application: str | None
    points: list[MetricPoint]


def decode_json_points(body: bytes) -> JsonBatch:
    """`{"application": slug?, "points": [{"name", "labels"?, "value", "time"?, "kind"?,
    "unit"?}]}` into points. A malformed document or point is a 400 naming the field; limits on
    names, labels, values and times are left to ingestion, which counts them."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestError(400, "parse_error", f"The body is not valid JSON: {exc}.") from exc
    except RecursionError as exc:
        raise _too_deep() from exc
    if not isinstance(document, dict):
        if too_deep(document):
            raise _too_deep()
        raise IngestError(400, "invalid", "The body must be a JSON object.")
    unknown = set(document) - {"application", "points"}
    if unknown:
        field = sorted(unknown)[0]
        raise IngestError(400, "invalid", f"Unknown field {field!r}.", field)
    items = document.get("points")
    if not isinstance(items, list):
        raise IngestError(400, "invalid", "A list of points is required.", "points")
    check_item_count(len(items))
    application = document.get("application")
    if application is not None and not isinstance(application, str):
        raise IngestError(400, "invalid", "The application must be a slug.", "application")
    return JsonBatch(application, [_json_point(item, index) for index, item in enumerate(items)])


_POINT_FIELDS = frozenset({"name", "labels", "value", "time", "kind", "unit"})
_KINDS = frozenset(MetricKind.values)


def _json_point(item: Any, index: int) -> MetricPoint:
    """One point; the hot loop of the JSON API, so checks are type identities, not isinstance."""
    if type(item) is not dict:
        raise IngestError(400, "invalid", "Each point must be an object.", f"points[{index}]")
    if not item.keys() <= _POINT_FIELDS:
        field = sorted(item.keys() - _POINT_FIELDS)[0]
        raise _bad(index, field, f"unknown field {field!r}")
    get = item.get
    name, value, labels, time = get("name"), get("value"), get("labels"), get("time")
    if type(name) is not str:
        raise _bad(index, "name", "a metric name (string) is required")
    if type(value) is not float:
        value = _number(value, index)
    if labels is None:
        labels = {}
    elif type(labels) is not dict:
        raise _bad(index, "labels", "labels must be an object of strings")
    else:
        for label_value in labels.values():
            if type(label_value) is not str:
                labels = _label_strings(labels, index)
                break
    if time is not None:
        time = _time_us(time, index)
    if "kind" not in item and "unit" not in item:
        return MetricPoint(name, labels, value, time)
    kind, unit = get("kind", MetricKind.GAUGE), get("unit", "")
    if kind not in _KINDS:
        raise _bad(index, "kind", f"kind must be one of {', '.join(sorted(_KINDS))}")
    if type(unit) is not str:
        raise _bad(index, "unit", "unit must be a string")
    return MetricPoint(name, labels, value, time, kind, unit)


def _number(value: Any, index: int) -> float:
    if type(value) is not int:
        raise _bad(index, "value", "a number is required")
    try:
        return float(value)
    except OverflowError as exc:
        raise _bad(index, "value", "the number is too large") from exc


def _label_strings(labels: dict, index: int) -> dict[str, str]:
    """Numbers and booleans become strings, as Prometheus labels are; nothing else does."""
    converted = {}
    for key, value in labels.items():
        if type(value) is str:
            converted[key] = value
        elif type(value) is bool:
            converted[key] = "true" if value else "false"
        elif type(value) in (int, float):
            converted[key] = repr(value)
        else:
            raise _bad(index, f"labels.{key}", "a label value must be a string")
    return converted


def _time_us(value: Any, index: int) -> int:
    """Epoch seconds (a number) or ISO 8601 with a zone offset (naive means UTC)."""
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


def _too_deep() -> IngestError:
    # Points have a fixed shape (deeper values are refused field by field), so only a
    # document that is not one is walked for its depth.
    return IngestError(
        400, "parse_error", f"The body is nested deeper than {MAX_JSON_DEPTH} levels."
    )


def _bad(index: int, field: str, message: str) -> IngestError:
    path = f"points[{index}].{field}"
    return IngestError(400, "invalid", f"{path}: {message}.", path)
