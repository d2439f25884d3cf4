"""Incidents in and out of files: the seed's `data/incidents/*.json` (arrays of incidents with
camelCase keys, upper- or lower-case enums and a timeline) and this project's `noc-incidents/1`.

Every entry is validated before anything is written, with its times as written: opened,
acknowledged, resolved, closed, updated and each timeline event. A seed incident is known by
its seed id (kept as the dedup key `seed:<id>`), one of ours by its id, so importing a file
twice changes nothing the second time; a timeline event is added when no event of that kind,
time and message is there yet. Imported events notify nobody: they are history.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import Truncator

from incidents.actions import incident_import
from incidents.choices import ACTIVE_STATUSES, EventKind, IncidentSource, IncidentStatus, Severity
from incidents.models import Incident
from noc.importing import (
    CREATE,
    INVALID,
    UNCHANGED,
    UPDATE,
    Entry,
    ImportFileError,
    ImportResult,
    Planned,
    dump_json,
    flag_duplicates,
    load_json,
    parse_time,
    progress_bar,
    refuse_non_finite,
)
from services.models import Service

FORMAT = "noc-incidents/1"
SEED_KEY = "seed:{}"  # the dedup key that remembers a seed incident's id
TITLE_MAX = Incident._meta.get_field("title").max_length

# Fields of ours written by an import, in export order; people by username.
FIELDS = [
    "id", "service", "title", "summary", "severity", "status", "source", "dedup_key",
    "assignee", "impact_started_at", "detected_at", "acknowledged_at", "acknowledged_by",
    "resolved_at", "resolved_by", "closed_at", "closed_by", "root_cause", "resolution_notes",
    "failed_checks", "reopen_count", "updated_at",
]  # fmt: skip
PEOPLE = {"assignee", "acknowledged_by", "resolved_by", "closed_by"}
TIMES = {
    "impact_started_at", "detected_at", "acknowledged_at", "resolved_at", "closed_at",
    "updated_at",
}  # fmt: skip

# The seed's keys by the field they fill, for errors in the seed's words.
SEED_FIELDS = {
    "serviceId": "service", "title": "title", "description": "summary", "severity": "severity",
    "status": "status", "createdAt": "detected_at", "updatedAt": "updated_at",
    "acknowledgedAt": "acknowledged_at", "resolvedAt": "resolved_at", "closedAt": "closed_at",
    "assignedTo": "assignee", "rootCause": "root_cause", "resolution": "resolution_notes",
    "affectedChecks": "failed_checks",
}  # fmt: skip
SEED_NAMES = {name: key for key, name in SEED_FIELDS.items()} | {
    "impact_started_at": "createdAt",
    "dedup_key": "id",
}
# Kept on the import's note in the timeline: the seed knew them, we have no column for them.
SEED_KEPT = {"serviceName", "estimatedImpact", "metadata", "resolutionTimeMinutes"}
SEED_OTHER = {"id", "timeline"}

# The seed's timeline actions, by the event kind they become (others become comments).
SEED_ACTIONS = {
    "created": EventKind.OPENED, "opened": EventKind.OPENED, "detected": EventKind.OPENED,
    "acknowledged": EventKind.ACKNOWLEDGED, "assigned": EventKind.ASSIGNED,
    "status_changed": EventKind.STATUS_CHANGED, "investigating": EventKind.STATUS_CHANGED,
    "in_progress": EventKind.STATUS_CHANGED, "resolved": EventKind.RESOLVED,
    "closed": EventKind.CLOSED, "reopened": EventKind.REOPENED,
    "check_failed": EventKind.CHECK_FAILED, "failure": EventKind.CHECK_FAILED,
    "check_recovered": EventKind.CHECK_RECOVERED, "recovered": EventKind.CHECK_RECOVERED,
    "severity_changed": EventKind.SEVERITY_CHANGED, "comment": EventKind.COMMENT,
    "note": EventKind.COMMENT,
}  # fmt: skip


def enum_value(raw: Any, choices: type) -> str | None:
    """The seed wrote enums in upper case (Prisma), lower case (JSON) and with hyphens
    (IN_PROGRESS, in_progress, in-progress): all are ours once lowered with underscores."""
    if not isinstance(raw, str):
        return None
    value = raw.strip().lower().replace("-", "_")
    return value if value in choices.values else None


# --- export -----------------------------------------------------------------------------------


def _username(user) -> str | None:
    return user.username if user is not None else None


def incident_document(incident: Incident) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(incident, name if name not in PEOPLE | {"service"} else f"{name}_id")
        if name in PEOPLE:
            value = _username(getattr(incident, name))
        row[name] = value
    row["events"] = [
        {
            "kind": e.kind, "actor": _username(e.actor), "message": e.message, "data": e.data,
            "time": e.time,
        }
        for e in incident.events.all()
    ]  # fmt: skip
    return row


def export_json() -> tuple[str, int]:
    incidents = list(
        Incident.objects.order_by("id").select_related(*PEOPLE).prefetch_related("events__actor")
    )
    document = {
        "format": FORMAT,
        "exported_at": timezone.now(),
        "incidents": [incident_document(i) for i in incidents],
    }
    return dump_json(document), len(incidents)


# --- parsing ----------------------------------------------------------------------------------


@dataclass
class IncidentEntry(Entry):
    events: list[dict[str, Any]] = field(default_factory=list)
    people: dict[str, str] = field(default_factory=dict)  # field -> username or email as written


def parse_documents(files: list[tuple[str, str]]) -> list[IncidentEntry]:
    """Entries of seed files (each a list of incidents, or {"incidents": [...]}) or of our own
    export, labelled with their file when there are several."""
    entries = []
    for name, text in files:
        items, own = _incidents_of(load_json(text), name)
        source = name if len(files) > 1 else ""
        entries += [
            _parse_entry(i, item, own=own, source=source) for i, item in enumerate(items, 1)
        ]
    return entries


def _incidents_of(document: Any, name: str) -> tuple[list[Any], bool]:
    if isinstance(document, list):
        return document, False
    if not isinstance(document, dict) or not isinstance(document.get("incidents"), list):
        where = f"{name}: " if name else ""
        raise ImportFileError(
            f'{where}expected a list of incidents or an object with an "incidents" list'
        )
    fmt = document.get("format")
    if fmt is not None and fmt != FORMAT:
        raise ImportFileError(f"unsupported format {fmt!r}; this version reads {FORMAT!r}")
    return document["incidents"], fmt == FORMAT


def _parse_entry(index: int, item: Any, *, own: bool, source: str) -> IncidentEntry:
    if not isinstance(item, dict):
        entry = IncidentEntry(index, "", source)
        entry.errors.append(f"expected an object, got {type(item).__name__}")
        return entry
    key = item.get("id")
    entry = IncidentEntry(
        index, "" if key is None else str(key), source, seed=not own, seed_names=SEED_NAMES
    )
    if refuse_non_finite(entry, item):
        return entry
    if own:
        _own_values(entry, item)
    else:
        _seed_values(entry, item)
    return entry


def _own_values(entry: IncidentEntry, item: dict[str, Any]) -> None:
    known = set(FIELDS) | {"events"}
    for key in item.keys() - known:
        entry.add_error(key, "unknown field")
    for name in FIELDS:
        if name not in item:
            continue
        value = item[name]
        if name in PEOPLE:
            if value is not None:
                entry.people[name] = value
        elif name == "service":
            entry.values["service_id"] = value
        elif name in TIMES:
            _set_time(entry, name, value)
        else:
            entry.values[name] = value
    if not isinstance(item.get("id"), int) or isinstance(item.get("id"), bool):
        entry.add_error("id", "expected the incident's number")
    entry.events = _events(entry, item.get("events", []), seed=False)


def _seed_values(entry: IncidentEntry, item: dict[str, Any]) -> None:
    seed_id = item.get("id")
    if not isinstance(seed_id, str | int) or isinstance(seed_id, bool) or not str(seed_id).strip():
        entry.add_error("dedup_key", "the seed incident's id is required")
    else:
        entry.values["dedup_key"] = SEED_KEY.format(str(seed_id).strip())
    entry.ignored_keys = item.keys() - SEED_FIELDS.keys() - SEED_KEPT - SEED_OTHER
    for key, name in SEED_FIELDS.items():
        if key not in item or item[key] is None:
            continue
        value = item[key]
        if name in TIMES:
            _set_time(entry, name, value)
        elif name == "assignee":
            entry.people[name] = value
        elif name == "service":
            entry.values["service_id"] = value
        elif name in ("severity", "status"):
            choices = Severity if name == "severity" else IncidentStatus
            mapped = enum_value(value, choices)
            if mapped is None:
                allowed = ", ".join(v.upper() for v in choices.values)
                entry.add_error(name, f"{value!r} is not one of {allowed}")
            else:
                entry.values[name] = mapped
        else:
            entry.values[name] = value
    entry.values.setdefault("source", IncidentSource.CHECK)  # the seed opened them on failures
    if "detected_at" in entry.values:
        entry.values["impact_started_at"] = entry.values["detected_at"]
    if not entry.values.get("title"):
        entry.values["title"] = _title_from(item)
    kept = {key: item[key] for key in sorted(SEED_KEPT) if item.get(key) is not None}
    entry.events = _events(entry, item.get("timeline", []), seed=True)
    if kept and "detected_at" in entry.values:
        entry.events.append(
            {
                "kind": EventKind.COMMENT, "actor": None, "time": entry.values["detected_at"],
                "message": "Imported from the earlier NOC", "data": {"seed": kept},
            }
        )  # fmt: skip


def _title_from(item: dict[str, Any]) -> str:
    """The seed's database rows have no title: the first line of the description, or the
    service's name."""
    description = item.get("description")
    if isinstance(description, str) and description.strip():
        return Truncator(description.strip().splitlines()[0]).chars(TITLE_MAX)
    name = item.get("serviceName") or item.get("serviceId") or "service"
    return Truncator(f"{name} incident").chars(TITLE_MAX)


def _set_time(entry: IncidentEntry, name: str, value: Any) -> None:
    if value is None:
        entry.values[name] = None
        return
    try:
        entry.values[name] = parse_time(value)
    except ValueError as exc:
        entry.add_error(name, str(exc))


def _events(entry: IncidentEntry, raw: Any, *, seed: bool) -> list[dict[str, Any]]:
    where = "timeline" if seed else "events"
    if not isinstance(raw, list):
        entry.add_error(where, "expected a list")
        return []
    events = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            entry.errors.append(f"field {here}: expected an object")
            continue
        event = _seed_event(item) if seed else _own_event(entry, item, here)
        try:
            event["time"] = parse_time(item.get("timestamp" if seed else "time"))
        except ValueError as exc:
            entry.errors.append(f"field {here}.{'timestamp' if seed else 'time'}: {exc}")
            continue
        events.append(event)
    return events


def _seed_event(item: dict[str, Any]) -> dict[str, Any]:
    action = str(item.get("action") or item.get("type") or "comment")
    message = item.get("description") or item.get("message") or ""
    data = {"seed_action": action}
    if item.get("user"):
        data["user"] = item["user"]
    kind = SEED_ACTIONS.get(action.strip().lower().replace("-", "_"), EventKind.COMMENT)
    # The person, when they are a user here too (else the name stays in data).
    return {"kind": kind, "actor": item.get("user"), "message": str(message), "data": data}


def _own_event(entry: IncidentEntry, item: dict[str, Any], here: str) -> dict[str, Any]:
    kind = item.get("kind")
    if kind not in EventKind.values:
        entry.errors.append(
            f"field {here}.kind: {kind!r} is not one of {', '.join(EventKind.values)}"
        )
    data = item.get("data") or {}
    if not isinstance(data, dict):
        entry.errors.append(f"field {here}.data: expected an object")
        data = {}
    return {
        "kind": kind,
        "actor": item.get("actor"),
        "message": str(item.get("message") or ""),
        "data": data,
    }


# --- planning and writing ---------------------------------------------------------------------


def _users(entries: list[IncidentEntry]):
    names = {n for e in entries for n in e.people.values()}
    names |= {ev["actor"] for e in entries for ev in e.events if ev.get("actor")}
    names = {n for n in names if isinstance(n, str)}
    found = {}
    for user in get_user_model().objects.filter(Q(username__in=names) | Q(email__in=names)):
        found[user.username] = user
        if user.email:
            found.setdefault(user.email, user)
    return found


def _resolve_people(entry: IncidentEntry, users: dict) -> None:
    for name, who in entry.people.items():
        user = users.get(who) if isinstance(who, str) else None
        if user is None:
            entry.warnings.append(f"{entry.shown(name)} {who!r} is not a user here: left empty")
        entry.values[f"{name}_id"] = user.pk if user else None
    for event in entry.events:
        who = event.pop("actor", None)
        event["actor_id"] = users[who].pk if isinstance(who, str) and who in users else None


def _check_times(entry: IncidentEntry, values: dict[str, Any]) -> None:
    status = values.get("status", IncidentStatus.NEW)
    if status in ACTIVE_STATUSES:
        for name in ("resolved_at", "closed_at"):
            if values.get(name) is not None:
                entry.warnings.append(
                    f"{entry.shown(name)}: an active incident has none; left empty"
                )
                values[name] = None
    if status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED) and not values.get("resolved_at"):
        entry.add_error("resolved_at", f"a {status} incident needs the time it was resolved")
    if status == IncidentStatus.CLOSED and not values.get("closed_at"):
        entry.add_error("closed_at", "a closed incident needs the time it was closed")
    order = ["detected_at", "acknowledged_at", "resolved_at", "closed_at"]
    opened = values.get("detected_at")
    for name in order[1:]:
        moment = values.get(name)
        if opened and moment and moment < opened:
            entry.add_error(
                name, f"{moment.isoformat()} is before it opened ({opened.isoformat()})"
            )
    if (
        values.get("resolved_at")
        and values.get("closed_at")
        and values["closed_at"] < values["resolved_at"]
    ):
        entry.add_error("closed_at", "is before the incident was resolved")


def plan(entries: list[IncidentEntry], *, lock: bool = False, progress=None) -> list[Planned]:
    """What importing `entries` would do to each incident, validating every one."""
    flag_duplicates(entries, "dedup_key")
    flag_duplicates([e for e in entries if not e.seed], "id")
    users = _users(entries)
    wanted = {e.values.get("service_id") for e in entries}
    services = set(
        Service.objects.filter(id__in=[s for s in wanted if isinstance(s, str)]).values_list(
            "id", flat=True
        )
    )
    current = _current(entries, lock=lock)
    active = Active(
        in_database=dict(
            Incident.objects.filter(service_id__in=services, status__in=ACTIVE_STATUSES)
            .values_list("service_id", "id")
        )
    )  # fmt: skip
    planned = []
    for entry in entries:
        _resolve_people(entry, users)
        planned.append(_plan_entry(entry, current.get(_identity(entry)), services, active))
        if progress is not None:
            progress.advance()
    return planned


@dataclass
class Active:
    """The one active incident a service may have: in the database, and in the file so far."""

    in_database: dict[str, int]
    in_file: dict[str, IncidentEntry] = field(default_factory=dict)


def _identity(entry: IncidentEntry) -> Any:
    return entry.values.get("dedup_key") if entry.seed else entry.values.get("id")


def _current(entries: list[IncidentEntry], *, lock: bool) -> dict[Any, Incident]:
    keys = [e.values["dedup_key"] for e in entries if e.seed and e.values.get("dedup_key")]
    ids = [e.values["id"] for e in entries if not e.seed and isinstance(e.values.get("id"), int)]
    found = Incident.objects.filter(Q(dedup_key__in=keys) | Q(id__in=ids)).order_by("id")
    if lock:
        found = found.select_for_update()
    current: dict[Any, Incident] = {}
    for incident in found.prefetch_related("events"):
        if incident.dedup_key in keys:
            current.setdefault(incident.dedup_key, incident)
        if incident.pk in ids:
            current[incident.pk] = incident
    return current


def _plan_entry(entry: IncidentEntry, current, services: set[str], active: Active) -> Planned:
    values = entry.values
    if entry.errors:
        return Planned(entry, INVALID)
    service_id = values.get("service_id")
    if service_id not in services:
        entry.add_error(
            "service",
            f"no service {service_id!r} here (import services first)" if service_id else "required",
        )
    if not values.get("detected_at"):
        entry.add_error("detected_at", "the time the incident opened is required")
    _check_times(entry, values)
    candidate = copy.copy(current) if current else Incident()
    for name, value in values.items():
        setattr(candidate, name, value)
    try:
        candidate.full_clean(
            exclude=["service", "detected_at", "updated_at"], validate_constraints=False
        )
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            for message in messages:
                entry.add_error(name, message)
    _check_active(entry, candidate, active)
    if entry.errors:
        return Planned(entry, INVALID)
    if current is None:
        return Planned(entry, CREATE)
    changes = {n: v for n, v in values.items() if getattr(current, n) != v}
    missing = _missing_events(current, entry.events)
    if missing:
        changes["events"] = len(missing)
    return Planned(entry, UPDATE if changes else UNCHANGED, current, changes)


def _check_active(entry: IncidentEntry, candidate: Incident, active: Active) -> None:
    """One active incident per service (the database's partial unique index): refused here,
    by name, rather than failing the whole import when it is written."""
    service = candidate.service_id
    if candidate.status not in ACTIVE_STATUSES:
        return
    if (other := active.in_file.get(service)) is not None:
        entry.add_error(
            "status", f"service {service} has another active incident here ({other.label()})"
        )
        return
    active.in_file[service] = entry
    found = active.in_database.get(service)
    if found is not None and found != candidate.pk:
        entry.add_error("status", f"service {service} already has active incident #{found}")


def event_key(kind: str, time: datetime, message: str) -> tuple:
    return kind, time, message


def _missing_events(
    incident: Incident | None, events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    have = (
        {event_key(e.kind, e.time, e.message) for e in incident.events.all()} if incident else set()
    )
    return [e for e in events if event_key(e["kind"], e["time"], e["message"]) not in have]


def import_entries(
    entries, *, actor=None, dry_run=False, partial=False, progress_stream=None
) -> ImportResult:
    """Validate every entry, then (unless dry run, and only when all are valid or `partial`)
    create or update the incidents with their timelines in one transaction."""
    with transaction.atomic():
        with progress_bar(progress_stream, "validating", len(entries), "incidents") as progress:
            planned = plan(entries, lock=not dry_run, progress=progress)
        result = ImportResult(planned, dry_run=dry_run)
        if dry_run or (result.of(INVALID) and not partial):
            return result
        writes = [p for p in planned if p.action in (CREATE, UPDATE)]
        with progress_bar(progress_stream, "writing", len(writes), "incidents") as progress:
            for p in writes:
                incident_import(
                    actor=actor,
                    incident=p.current,
                    values=p.entry.values,
                    events=_missing_events(p.current, p.entry.events),
                )
                progress.advance()
        result.written = True
    return result
