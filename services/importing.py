"""Service configuration in and out of files: the seed's `config/services.json` shape and this
project's own `noc-services/1` format. The management commands only read files and print.

Every entry is validated (an unsaved `Service`, `full_clean()`) before anything is written, and
an import upserts by id in one transaction, so running it twice changes nothing the second time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO
from uuid import UUID

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from noc.progress import Progress
from services.actions import service_create, service_update
from services.choices import CheckKind
from services.models import Service

FORMAT = "noc-services/1"
DOCUMENT_KEYS = {"format", "exported_at", "services"}

# Kept by the workers and the database, never part of a configuration.
STATE_FIELDS = frozenset(
    {
        "status", "last_checked_at", "last_slot", "last_response_time_ms", "last_status_code",
        "last_error", "consecutive_failures", "consecutive_successes", "next_check_at",
        "last_ping_at", "last_start_at", "created_at", "updated_at",
    }
)  # fmt: skip

# Seed keys copied as they are, by the model field they fill.
SEED_PLAIN = {
    "id": "id",
    "name": "name",
    "description": "description",
    "url": "url",
    "method": "method",
    "headers": "headers",
    "critical": "critical",
    "enabled": "enabled",
    "tags": "tags",
}
SEED_MAPPED = {"interval", "healthCheck", "timeout"}
# Model fields named back in the seed's words, so an error points at the key in the file.
SEED_NAMES = {
    "interval_seconds": "interval",
    "cron": "interval",
    "expected_status": "healthCheck.expectedStatus",
    "max_response_time_ms": "healthCheck.maxResponseTime",
    "timeout_seconds": "timeout",
}


class ImportFileError(Exception):
    """The document as a whole cannot be read (not JSON, not a list of services)."""


def config_field_names() -> list[str]:
    """The Service fields a configuration holds, in model order."""
    return [f.name for f in Service._meta.concrete_fields if f.name not in STATE_FIELDS]


# --- export -----------------------------------------------------------------------------------


def service_config(service: Service) -> dict[str, Any]:
    return {name: _json_safe(getattr(service, name)) for name in config_field_names()}


def export_document(services: Iterable[Service] | None = None) -> dict[str, Any]:
    services = Service.objects.order_by("id") if services is None else services
    return {
        "format": FORMAT,
        "exported_at": timezone.now().isoformat(),
        "services": [service_config(s) for s in services],
    }


def export_json(services: Iterable[Service] | None = None) -> str:
    return json.dumps(export_document(services), indent=2, cls=DjangoJSONEncoder) + "\n"


def _json_safe(value: Any) -> Any:
    return str(value) if isinstance(value, UUID) else value


# --- parsing ----------------------------------------------------------------------------------


@dataclass
class Entry:
    """One service of the file: its field values, or the reasons it cannot be imported."""

    index: int  # 1-based position in the file, as an operator counts
    service_id: str
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seed: bool = False
    ignored_keys: set[str] = field(default_factory=set)

    def label(self) -> str:
        return f"entry {self.index} ({self.service_id or 'no id'})"

    def add_error(self, name: str, message: str) -> None:
        if name == NON_FIELD_ERRORS:
            self.errors.append(message)
            return
        shown = SEED_NAMES.get(name, name) if self.seed else name
        self.errors.append(f"field {shown}: {message}")

    def messages(self) -> list[str]:
        return [f"{self.label()}: {error}" for error in self.errors]


def parse_document(text: str) -> list[Entry]:
    """Entries of a seed file (a list, or {"services": [...]}) or of our own export."""
    try:
        document = json.loads(text, parse_constant=NonFinite)
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    items, own = _services_of(document)
    return [_parse_entry(i, item, own=own) for i, item in enumerate(items, start=1)]


class NonFinite(str):
    """What `json.loads` makes of NaN, Infinity and -Infinity (which JSON does not have and
    PostgreSQL's jsonb refuses): kept as a marker so the entry holding one is refused, by name."""


def _non_finite(value: Any, path: str) -> tuple[str, str] | None:
    """The path and spelling of the first NaN or Infinity in `value`, if any."""
    if isinstance(value, NonFinite):
        return path, str(value)
    if isinstance(value, dict):
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for here, item in items:
        if found := _non_finite(item, here):
            return found
    return None


def _services_of(document: Any) -> tuple[list[Any], bool]:
    if isinstance(document, list):
        return document, False
    if not isinstance(document, dict) or not isinstance(document.get("services"), list):
        raise ImportFileError('expected a list of services or an object with a "services" list')
    fmt = document.get("format")
    if fmt is not None and fmt != FORMAT:
        raise ImportFileError(f"unsupported format {fmt!r}; this version reads {FORMAT!r}")
    return document["services"], fmt == FORMAT


def _parse_entry(index: int, item: Any, *, own: bool) -> Entry:
    if not isinstance(item, dict):
        entry = Entry(index, "")
        kind = item if isinstance(item, NonFinite) else type(item).__name__
        entry.errors.append(f"expected an object, got {kind}")
        return entry
    entry = Entry(index, str(item.get("id") or ""), seed=not own)
    if found := _non_finite(item, ""):
        path, spelling = found
        entry.add_error(path, f"{spelling} is not a number JSON allows; give a finite number")
        return entry
    raw = _own_values(entry, item) if own else _seed_values(entry, item)
    entry.values = _coerce(entry, raw)
    return entry


def _own_values(entry: Entry, item: dict[str, Any]) -> dict[str, Any]:
    known = set(config_field_names())
    for key in item.keys() - known:
        entry.add_error(key, "unknown field")
    return {key: value for key, value in item.items() if key in known}


def _seed_values(entry: Entry, item: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {SEED_PLAIN[k]: v for k, v in item.items() if k in SEED_PLAIN}
    values["kind"] = CheckKind.HTTP  # the seed only checked URLs
    entry.ignored_keys = item.keys() - SEED_PLAIN.keys() - SEED_MAPPED
    if "interval" in item:
        _seed_interval(entry, item["interval"], values)
    health = item.get("healthCheck") or {}
    if not isinstance(health, dict):
        entry.add_error("healthCheck", "expected an object")
        health = {}
    if "expectedStatus" in health:
        expected = health["expectedStatus"]
        values["expected_status"] = expected if isinstance(expected, list) else [expected]
    if "maxResponseTime" in health:
        values["max_response_time_ms"] = health["maxResponseTime"]
    timeout = item.get("timeout", health.get("timeout"))
    if timeout is not None:
        _seed_timeout(entry, timeout, values)
    return values


def _seed_interval(entry: Entry, interval: Any, values: dict[str, Any]) -> None:
    """A number of seconds (or a string of digits), or a cron string with seconds first."""
    if isinstance(interval, str) and interval.strip().isdigit():
        interval = int(interval.strip())
    if isinstance(interval, str) and interval.strip():
        values.update(interval_seconds=None, cron=interval.strip())
    elif _is_number(interval) and float(interval).is_integer():
        values.update(interval_seconds=int(interval), cron="")
    else:
        entry.add_error("interval", "expected whole seconds or a cron string like */30 * * * * *")


def _seed_timeout(entry: Entry, timeout: Any, values: dict[str, Any]) -> None:
    # Milliseconds, like every other duration in the seed (maxResponseTime).
    if _is_number(timeout):
        values["timeout_seconds"] = timeout / 1000
    else:
        entry.add_error("timeout", "expected milliseconds as a number")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _coerce(entry: Entry, raw: dict[str, Any]) -> dict[str, Any]:
    """Values converted to the field types, so validation compares like with like."""
    values = {}
    for name, value in raw.items():
        try:
            values[name] = _to_python(Service._meta.get_field(name), value)
        except ValidationError as exc:
            for message in exc.messages:
                entry.add_error(name, message)
    return values


def _to_python(model_field: models.Field, value: Any) -> Any:
    if isinstance(model_field, models.JSONField):
        return value
    if value is None:
        if model_field.null:
            return None
        if model_field.empty_strings_allowed and model_field.blank:
            return ""
        raise ValidationError("must not be null")
    if isinstance(model_field, ArrayField):
        if not isinstance(value, list):
            raise ValidationError("expected a list")
        return [_to_python(model_field.base_field, item) for item in value]
    if isinstance(model_field, models.IntegerField | models.FloatField) and isinstance(value, bool):
        raise ValidationError("expected a number, not true/false")
    if isinstance(model_field, models.BooleanField) and not isinstance(value, bool):
        raise ValidationError("expected true or false")
    return model_field.to_python(value)


# --- planning and writing ---------------------------------------------------------------------

CREATE, UPDATE, UNCHANGED, INVALID = "create", "update", "unchanged", "invalid"


@dataclass
class Planned:
    entry: Entry
    action: str
    current: Service | None = None
    changes: dict[str, Any] = field(default_factory=dict)  # update: the fields that differ


@dataclass
class ImportResult:
    planned: list[Planned]
    dry_run: bool = False
    written: bool = False

    def of(self, action: str) -> list[Planned]:
        return [p for p in self.planned if p.action == action]

    def errors(self) -> list[str]:
        return [message for p in self.of(INVALID) for message in p.entry.messages()]

    def ignored_seed_keys(self) -> list[str]:
        return sorted({key for p in self.planned for key in p.entry.ignored_keys})

    def summary(self) -> str:
        counts = ", ".join(
            f"{word} {len(self.of(action))}"
            for word, action in (
                ("created", CREATE),
                ("updated", UPDATE),
                ("unchanged", UNCHANGED),
                ("invalid", INVALID),
            )
        )
        if self.written:
            return counts
        if self.dry_run:
            return f"{counts} (dry run: nothing written)"
        return f"{counts} (nothing written: fix the invalid entries, or import with --partial)"


def plan(entries: list[Entry], *, lock: bool = False, progress: Progress | None = None):
    """What importing `entries` would do to each service, validating every one."""
    ids = [e.values["id"] for e in entries if isinstance(e.values.get("id"), str)]
    existing = Service.objects.filter(id__in=ids).order_by("id")  # one lock order for writers
    current = {s.id: s for s in (existing.select_for_update() if lock else existing)}
    _flag_duplicates(entries)
    planned = []
    for entry in entries:
        planned.append(_plan_entry(entry, current.get(entry.values.get("id"))))
        if progress is not None:
            progress.advance()
    return planned


def _flag_duplicates(entries: list[Entry]) -> None:
    for name in ("id", "ping_token"):
        first: dict[Any, int] = {}
        for entry in entries:
            value = entry.values.get(name)
            if value is None:
                continue
            if value in first:
                entry.add_error(name, f"{value} is already used by entry {first[value]}")
            first.setdefault(value, entry.index)


def _plan_entry(entry: Entry, current: Service | None) -> Planned:
    if "id" not in entry.values and not entry.errors:
        entry.add_error("id", "an id is required")
    if entry.errors:
        return Planned(entry, INVALID)
    candidate = copy.copy(current) if current else Service()
    for name, value in entry.values.items():
        setattr(candidate, name, value)
    try:
        candidate.full_clean()
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            for message in messages:
                entry.add_error(name, message)
        return Planned(entry, INVALID)
    if current is None:
        return Planned(entry, CREATE)
    changes = {
        name: getattr(candidate, name)
        for name in entry.values
        if getattr(candidate, name) != getattr(current, name)
    }
    return Planned(entry, UPDATE if changes else UNCHANGED, current, changes)


def import_entries(
    entries: list[Entry],
    *,
    actor=None,
    dry_run: bool = False,
    partial: bool = False,
    progress_stream: TextIO | None = None,
) -> ImportResult:
    """Validate every entry, then (unless dry run, and only when all are valid or `partial`)
    create or update the services in one transaction. Progress goes to `progress_stream`."""

    def bar(label: str, total: int) -> Progress:
        quiet = progress_stream is None
        return Progress(total, label=label, unit="services", stream=progress_stream, quiet=quiet)

    with transaction.atomic():
        with bar("validating", len(entries)) as progress:
            planned = plan(entries, lock=not dry_run, progress=progress)
        result = ImportResult(planned, dry_run=dry_run)
        if dry_run or (result.of(INVALID) and not partial):
            return result
        writes = [p for p in planned if p.action in (CREATE, UPDATE)]
        if writes:
            with bar("writing", len(writes)) as progress:
                for planned_write in writes:
                    _write(planned_write, actor=actor)
                    progress.advance()
        result.written = True
    return result


def _write(planned: Planned, *, actor) -> None:
    if planned.action == CREATE:
        service_create(actor=actor, **planned.entry.values)
    elif planned.action == UPDATE:
        service_update(actor=actor, service=planned.current, **planned.changes)
