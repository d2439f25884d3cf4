"""What a log store takes: `LogRecord`, with times in microseconds since the Unix epoch and
ids that make writing a batch twice store it once (time-ordered, so PostgreSQL's index on
them and Elasticsearch's segments grow at the end)."""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from observability.choices import LogLevel
from observability.points import from_us

LEVELS = tuple(LogLevel.values)
OUR_LEVELS = {name: name for name in LEVELS}  # spelled as ours: the usual case, one look-up
# Common spellings of levels (syslog, Python, log4j, Go) onto ours.
LEVEL_ALIASES = {
    "warning": LogLevel.WARN,
    "err": LogLevel.ERROR,
    "critical": LogLevel.FATAL,
    "crit": LogLevel.FATAL,
    "emerg": LogLevel.FATAL,
    "emergency": LogLevel.FATAL,
    "alert": LogLevel.FATAL,
    "panic": LogLevel.FATAL,
    "notice": LogLevel.INFO,
    "information": LogLevel.INFO,
    "informational": LogLevel.INFO,
    "dbg": LogLevel.DEBUG,
    "trc": LogLevel.TRACE,
}


def level_of(name: str) -> str | None:
    """Our level for a spelling of one, or None when it is not a level."""
    lowered = name.strip().lower()
    if lowered in LEVELS:
        return lowered
    alias = LEVEL_ALIASES.get(lowered)
    return str(alias) if alias else None


def new_uid(time_us: int | None = None) -> uuid.UUID:
    """48 bits of milliseconds then 80 random bits (the layout of UUIDv7, without the version
    bits, which nobody reads here). The bits come from `random`, reseeded from the system in
    each forked process: an id need not be unpredictable, only unique, and this is a quarter
    of `os.urandom`'s cost (a system call a line)."""
    ms = (time_us // 1000) if time_us is not None else int(time.time() * 1000)
    uid = _new_object(_UUID)
    _set(uid, "int", (ms & 0xFFFF_FFFF_FFFF) << 80 | _random_bits(80))  # as UUID(int=) does
    _set(uid, "is_safe", _UNKNOWN)
    return uid


_new_object, _set, _random_bits = object.__new__, object.__setattr__, random.getrandbits
_UUID, _UNKNOWN = uuid.UUID, uuid.SafeUUID.unknown


def _attributes_encoder():
    """JSON text of attributes (UTF-8 as is; NaN and infinity refused with ValueError). The C
    encoder made once: json.dumps with options builds an encoder a call, twice the cost of the
    encoding itself for a line's few attributes. No cycle check: attributes come from a parsed
    JSON body or OTLP message, which cannot hold one."""
    from json.encoder import c_make_encoder, encode_basestring

    if c_make_encoder is None:
        return json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    encode = c_make_encoder(None, None, encode_basestring, None, ": ", ", ", False, False, False)
    return lambda value: "".join(encode(value, 0))


attributes_json_text = _attributes_encoder()


class LogRecord(NamedTuple):
    uid: uuid.UUID
    time_us: int
    application_id: int
    level: str
    message: str
    service: str = ""
    host: str = ""
    trace_id: str = ""
    span_id: str = ""
    attributes: dict[str, Any] | None = None
    application: str = ""  # the slug, which Elasticsearch documents carry
    attributes_json: bytes = b""  # the attributes as checked (UTF-8 JSON), when they were

    @property
    def time(self) -> datetime:
        return from_us(self.time_us)


# The decoders' inner loops build records with `make_record(LogRecord, (every field, in order))`:
# the named tuple's own constructor is Python code with keyword handling, twice the cost of
# building the same tuple in C. All twelve fields must be given.
make_record = tuple.__new__


def document(record: LogRecord) -> dict[str, Any]:
    """A record as Elasticsearch and the outbox keep it (plain JSON)."""
    return {
        "uid": str(record.uid),
        "time_us": record.time_us,
        "application": record.application,
        "level": record.level,
        "service": record.service,
        "host": record.host,
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "message": record.message,
        "attributes": record.attributes or {},
    }


@dataclass
class LogHit:
    """One line a search found, as the API shows it."""

    uid: str
    time: datetime
    application: str
    level: str
    message: str
    service: str
    host: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    highlight: list[str] = field(default_factory=list)


@dataclass
class LogPage:
    hits: list[LogHit]
    next_cursor: str | None
