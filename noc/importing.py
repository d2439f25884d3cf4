"""What every import and export command shares: reading a JSON document (NaN and Infinity
refused by name), entries that collect their errors before anything is written, the plan and
its summary, and the manage.py command shapes (FILE or '-', --dry-run, --partial, --output).

services/importing.py, incidents/importing.py and slos/importing.py build on it: each maps its
seed shape and its own `noc-<things>/1` format to model values and writes through its actions.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from noc.progress import Progress

CREATE, UPDATE, UNCHANGED, INVALID = "create", "update", "unchanged", "invalid"


class ImportFileError(Exception):
    """The document as a whole cannot be read (not JSON, not a list of entries)."""


class NonFinite(str):
    """What `json.loads` makes of NaN, Infinity and -Infinity (which JSON does not have and
    PostgreSQL's jsonb refuses): kept as a marker so the entry holding one is refused, by name."""


def dump_json(document: Any) -> str:
    """Indented JSON with times to the microsecond (DjangoJSONEncoder keeps milliseconds, and
    an export must import back equal) and decimals as written."""

    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat().replace("+00:00", "Z")
        if isinstance(value, Decimal):
            return str(value)
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    return json.dumps(document, indent=2, default=default) + "\n"


def load_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=NonFinite)
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc


def non_finite(value: Any, path: str) -> tuple[str, str] | None:
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
        if found := non_finite(item, here):
            return found
    return None


def parse_time(raw: Any) -> datetime:
    """An ISO 8601 time with its zone (the seed's JSON dates end in Z)."""
    if not isinstance(raw, str):
        raise ValueError("expected an ISO 8601 time such as 2025-01-15T10:30:00Z")
    try:
        moment = parse_datetime(raw.strip())
    except ValueError:
        moment = None
    if moment is None:
        raise ValueError(f"{raw!r} is not an ISO 8601 time such as 2025-01-15T10:30:00Z")
    if timezone.is_naive(moment):
        raise ValueError(f"{raw!r} has no time zone; write it in UTC (…Z) or with an offset")
    return moment


@dataclass
class Entry:
    """One entry of a file: its values, or the reasons it cannot be imported. `seed_names`
    names model fields back in the seed's words, so an error points at the key in the file."""

    index: int  # 1-based position in its file, as an operator counts
    key: str  # the entry's id as written, for messages
    source: str = ""  # the file, when several are read
    values: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seed: bool = False
    seed_names: dict[str, str] = field(default_factory=dict)
    ignored_keys: set[str] = field(default_factory=set)

    def label(self) -> str:
        where = f"{self.source} " if self.source else ""
        return f"{where}entry {self.index} ({self.key or 'no id'})"

    def shown(self, name: str) -> str:
        """A field's name as the file spells it."""
        return self.seed_names.get(name, name) if self.seed else name

    def add_error(self, name: str, message: str) -> None:
        if name == NON_FIELD_ERRORS:
            self.errors.append(message)
            return
        self.errors.append(f"field {self.shown(name)}: {message}")

    def messages(self) -> list[str]:
        return [f"{self.label()}: {error}" for error in self.errors]


def refuse_non_finite(entry: Entry, item: dict[str, Any]) -> bool:
    """Record an error for a NaN or Infinity anywhere in `item`; True when there was one."""
    if found := non_finite(item, ""):
        path, spelling = found
        entry.add_error(path, f"{spelling} is not a number JSON allows; give a finite number")
        return True
    return False


def flag_duplicates(entries: Iterable[Entry], name: str) -> None:
    first: dict[Any, Entry] = {}
    for entry in entries:
        value = entry.values.get(name)
        if value is None:
            continue
        if value in first:
            entry.add_error(name, f"{value} is already used by {first[value].label()}")
        first.setdefault(value, entry)


@dataclass
class Planned:
    entry: Entry
    action: str
    current: Any = None
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

    def warnings(self) -> list[str]:
        return [f"{p.entry.label()}: {w}" for p in self.planned for w in p.entry.warnings]

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


def progress_bar(stream: TextIO | None, label: str, total: int, unit: str) -> Progress:
    return Progress(total, label=label, unit=unit, stream=stream, quiet=stream is None)


# --- the commands -----------------------------------------------------------------------------


def read_text(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {file}: {exc.strerror or exc}") from exc


class ImportCommand(BaseCommand):
    """FILE ('-' for stdin), --dry-run, --partial; errors and warnings to stderr, the summary to
    stdout, a non-zero exit when entries are invalid (unless --partial)."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and report; write nothing."
        )
        parser.add_argument(
            "--partial",
            action="store_true",
            help="Import the valid entries even when others are invalid.",
        )

    def parse(self, file: str) -> list[Entry]:
        raise NotImplementedError

    def run_import(self, entries: list[Entry], *, dry_run: bool, partial: bool) -> ImportResult:
        raise NotImplementedError

    def handle(self, *args, file: str, dry_run: bool, partial: bool, **options) -> None:
        try:
            entries = self.parse(file)
        except ImportFileError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        result = self.run_import(entries, dry_run=dry_run, partial=partial)
        for message in result.errors() + result.warnings():
            self.stderr.write(message)
        if result.ignored_seed_keys():
            self.stderr.write(f"ignored seed keys: {', '.join(result.ignored_seed_keys())}")
        if dry_run or options["verbosity"] >= 2:
            for planned in result.planned:
                if planned.action != INVALID:
                    fields = f": {', '.join(sorted(planned.changes))}" if planned.changes else ""
                    self.stdout.write(f"{planned.action} {planned.entry.key}{fields}")
        self.stdout.write(result.summary())
        invalid = len(result.of(INVALID))
        if invalid and not partial:
            raise CommandError(f"{invalid} invalid entr{'y' if invalid == 1 else 'ies'} in {file}")


class ExportCommand(BaseCommand):
    """The document on stdout, or in --output FILE."""

    noun = "entries"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", help="Write to this file instead of stdout.")

    def document(self) -> tuple[str, int]:
        """The JSON text and how many entries it holds."""
        raise NotImplementedError

    def handle(self, *args, output: str | None, **options) -> None:
        text, count = self.document()
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from exc
        self.stderr.write(f"exported {count} {self.noun} to {output}")


def each_file(path: str, read: Callable[[str], str] = read_text) -> list[tuple[str, str]]:
    """(name, text) of FILE, of every *.json in a directory (sorted), or of stdin ('-')."""
    if path != "-" and Path(path).is_dir():
        files = sorted(Path(path).glob("*.json"))
        if not files:
            raise CommandError(f"{path}: no .json files in this directory")
        return [(file.name, read(str(file))) for file in files]
    return [("" if path == "-" else Path(path).name, read(path))]
