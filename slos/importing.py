"""SLOs in and out of files: the seed's `data/slos/slos.json` (a list, or {"slos": [...]} as in
its config/slos.json; camelCase keys, windows and SLI types in either case) and this project's
`noc-slos/1`. Every entry is validated (an unsaved SLO, `full_clean()`) before anything is
written; an import upserts by id through the slos actions, so a second run changes nothing.

An error-rate SLO of the seed was judged as a success percent (target 99: at most 1 % errors);
here its target is the maximum error percent, so it is converted by the rule of migration
slos/0002 (50 or more: 100 − target; under 50: already a maximum), or taken from the seed's
`threshold` (its error-rate limit) when it has one.
"""

from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

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
from slos.actions import slo_create, slo_update
from slos.choices import METRIC_SLI_TYPES, SliType
from slos.models import SLO

FORMAT = "noc-slos/1"
FIELDS = [
    "id", "name", "description", "owner", "service", "sli_type", "target", "window",
    "time_zone", "budgeting_method", "latency_threshold_ms", "good_metric", "total_metric",
    "histogram_metric", "histogram_threshold", "enabled",
]  # fmt: skip
TIMES = ["created_at", "updated_at"]
SEED_PLAIN = {"id": "id", "name": "name", "description": "description", "enabled": "enabled"}
SEED_MAPPED = {"serviceId", "target", "window", "sliType", "threshold", "createdAt", "updatedAt"}
SEED_NAMES = {
    "service": "serviceId", "sli_type": "sliType", "latency_threshold_ms": "threshold",
    "created_at": "createdAt", "updated_at": "updatedAt",
}  # fmt: skip
# The seed's Prisma spelling of its windows.
SEED_WINDOWS = {
    "ONE_HOUR": "1h", "TWENTY_FOUR_HOURS": "24h", "SEVEN_DAYS": "7d", "THIRTY_DAYS": "30d",
    "NINETY_DAYS": "90d",
}  # fmt: skip
SEED_SLI_TYPES = {"errorrate": SliType.ERROR_RATE, "error_rate": SliType.ERROR_RATE,
                  "availability": SliType.AVAILABILITY, "latency": SliType.LATENCY}  # fmt: skip


# --- export -----------------------------------------------------------------------------------


def slo_document(slo: SLO) -> dict[str, Any]:
    row = {name: getattr(slo, f"{name}_id" if name == "service" else name) for name in FIELDS}
    row["owner"] = slo.owner.username if slo.owner else None
    row["target"] = str(slo.target.normalize())
    row.update({name: getattr(slo, name) for name in TIMES})
    return row


def export_json() -> tuple[str, int]:
    slos = list(SLO.objects.order_by("id").select_related("owner"))
    document = {
        "format": FORMAT,
        "exported_at": timezone.now(),
        "slos": [slo_document(s) for s in slos],
    }
    return dump_json(document), len(slos)


# --- parsing ----------------------------------------------------------------------------------


def parse_document(text: str) -> list[Entry]:
    items, own = _slos_of(load_json(text))
    return [_parse_entry(i, item, own=own) for i, item in enumerate(items, start=1)]


def _slos_of(document: Any) -> tuple[list[Any], bool]:
    if isinstance(document, list):
        return document, False
    if not isinstance(document, dict) or not isinstance(document.get("slos"), list):
        raise ImportFileError('expected a list of SLOs or an object with an "slos" list')
    fmt = document.get("format")
    if fmt is not None and fmt != FORMAT:
        raise ImportFileError(f"unsupported format {fmt!r}; this version reads {FORMAT!r}")
    return document["slos"], fmt == FORMAT


def _parse_entry(index: int, item: Any, *, own: bool) -> Entry:
    if not isinstance(item, dict):
        entry = Entry(index, "")
        entry.errors.append(f"expected an object, got {type(item).__name__}")
        return entry
    entry = Entry(index, str(item.get("id") or ""), seed=not own, seed_names=SEED_NAMES)
    if refuse_non_finite(entry, item):
        return entry
    if own:
        _own_values(entry, item)
    else:
        _seed_values(entry, item)
    return entry


def _own_values(entry: Entry, item: dict[str, Any]) -> None:
    for key in item.keys() - set(FIELDS) - set(TIMES):
        entry.add_error(key, "unknown field")
    for name in FIELDS + TIMES:
        if name not in item:
            continue
        value = item[name]
        if name == "service":
            entry.values["service_id"] = value
        elif name == "owner":
            entry.values["owner"] = value  # a username, resolved when planning
        elif name == "target":
            _set_target(entry, value)
        elif name in TIMES:
            _set_time(entry, name, value)
        else:
            entry.values[name] = value


def _seed_values(entry: Entry, item: dict[str, Any]) -> None:
    values = entry.values
    values.update({SEED_PLAIN[k]: v for k, v in item.items() if k in SEED_PLAIN})
    entry.ignored_keys = item.keys() - SEED_PLAIN.keys() - SEED_MAPPED
    values["service_id"] = item.get("serviceId")
    window = item.get("window")
    values["window"] = SEED_WINDOWS.get(window, window) if isinstance(window, str) else window
    sli_type = item.get("sliType")
    mapped = SEED_SLI_TYPES.get(sli_type.strip().lower()) if isinstance(sli_type, str) else None
    if mapped is None:
        entry.add_error("sli_type", f"{sli_type!r} is not one of availability, latency, errorRate")
        return
    values["sli_type"] = mapped
    if "target" in item:
        _set_target(entry, item["target"])
    threshold = item.get("threshold")
    if mapped == SliType.LATENCY:
        values["latency_threshold_ms"] = threshold
    elif mapped == SliType.ERROR_RATE and "target" in values:
        _seed_error_rate(entry, threshold)
    for key, name in (("createdAt", "created_at"), ("updatedAt", "updated_at")):
        if item.get(key) is not None:
            _set_time(entry, name, item[key])


def _seed_error_rate(entry: Entry, threshold: Any) -> None:
    """The seed's target was the percent of successful checks; ours is the maximum percent
    failed. Its `threshold`, when given, is that maximum as the seed's author wrote it."""
    written = entry.values["target"]
    converted = Decimal(100) - written if written >= 50 else written
    if threshold is None:
        entry.values["target"] = converted
        return
    limit = _decimal(threshold)
    if limit is None:
        entry.add_error("latency_threshold_ms", f"{threshold!r} is not a number")
    elif limit != converted:
        entry.add_error(
            "latency_threshold_ms",
            f"an error rate of at most {limit} % contradicts the target {written} "
            f"(which allows {converted} % errors); make them agree",
        )
    else:
        entry.values["target"] = limit


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _set_target(entry: Entry, value: Any) -> None:
    number = _decimal(value)
    if number is None or not number.is_finite():
        entry.add_error("target", f"{value!r} is not a number")
    else:
        entry.values["target"] = number


def _set_time(entry: Entry, name: str, value: Any) -> None:
    try:
        entry.values[name] = parse_time(value)
    except ValueError as exc:
        entry.add_error(name, str(exc))


# --- planning and writing ---------------------------------------------------------------------


def plan(entries: list[Entry], *, lock: bool = False, progress=None) -> list[Planned]:
    flag_duplicates(entries, "id")
    ids = [e.values["id"] for e in entries if isinstance(e.values.get("id"), str)]
    existing = SLO.objects.filter(id__in=ids).order_by("id")
    current = {s.id: s for s in (existing.select_for_update() if lock else existing)}
    service_ids = [e.values.get("service_id") for e in entries]
    services = Service.objects.in_bulk([s for s in service_ids if isinstance(s, str)])
    owners = {
        u.username: u
        for u in get_user_model().objects.filter(
            username__in=[
                e.values.get("owner") for e in entries if isinstance(e.values.get("owner"), str)
            ]
        )
    }
    planned = []
    for entry in entries:
        planned.append(_plan_entry(entry, current.get(entry.values.get("id")), services, owners))
        if progress is not None:
            progress.advance()
    return planned


def _plan_entry(entry: Entry, current: SLO | None, services, owners) -> Planned:
    values = entry.values
    if "id" not in values and not entry.errors:
        entry.add_error("id", "an id is required")
    sid = values.get("service_id")
    service = services.get(sid)
    # A metric SLO may be about no service; one it names must exist.
    needed = sid is not None or values.get("sli_type") not in METRIC_SLI_TYPES
    if service is None and needed and not entry.errors:
        entry.add_error(
            "service", f"no service {sid!r} here (import services first)" if sid else "required"
        )
    if isinstance(values.get("owner"), str):
        owner = owners.get(values["owner"])
        if owner is None:
            entry.warnings.append(f"owner {values['owner']!r} is not a user here: left empty")
        values["owner"] = owner
    if entry.errors:
        return Planned(entry, INVALID)
    config = {k: v for k, v in values.items() if k not in TIMES}
    candidate = copy.copy(current) if current else SLO()
    for name, value in config.items():
        setattr(candidate, name, value)
    candidate.service = service
    try:
        candidate.full_clean(exclude=["created_at", "updated_at"])
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            for message in messages:
                entry.add_error(name, message)
        return Planned(entry, INVALID)
    if current is None:
        return Planned(entry, CREATE)
    changes = {
        n: getattr(candidate, n) for n in config if getattr(candidate, n) != getattr(current, n)
    }
    if values.get("created_at") and values["created_at"] != current.created_at:
        changes["created_at"] = values["created_at"]
    return Planned(entry, UPDATE if changes else UNCHANGED, current, changes)


def import_entries(
    entries, *, actor=None, dry_run=False, partial=False, progress_stream=None
) -> ImportResult:
    with transaction.atomic():
        with progress_bar(progress_stream, "validating", len(entries), "SLOs") as progress:
            planned = plan(entries, lock=not dry_run, progress=progress)
        result = ImportResult(planned, dry_run=dry_run)
        if dry_run or (result.of(INVALID) and not partial):
            return result
        writes = [p for p in planned if p.action in (CREATE, UPDATE)]
        with progress_bar(progress_stream, "writing", len(writes), "SLOs") as progress:
            for p in writes:
                _write(p, actor=actor)
                progress.advance()
        result.written = True
    return result


def _write(planned: Planned, *, actor) -> None:
    values = planned.entry.values
    config = {k: v for k, v in values.items() if k not in TIMES}
    if planned.action == CREATE:
        slo = slo_create(actor=actor, **config)
    else:
        changed = {k: v for k, v in planned.changes.items() if k not in TIMES}
        slo = (
            slo_update(actor=actor, slo=planned.current, **changed) if changed else planned.current
        )
    times = {name: values[name] for name in TIMES if values.get(name)}
    if times:
        SLO.objects.filter(pk=slo.pk).update(**times)  # as written, not the moment of import
