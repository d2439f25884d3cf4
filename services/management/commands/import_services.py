"""`manage.py import_services FILE`: create or update services from a seed `services.json` or
from an `export_services` file, all or nothing (unless --partial)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from services.importing import (
    CREATE,
    INVALID,
    UNCHANGED,
    UPDATE,
    ImportFileError,
    ImportResult,
    import_entries,
    parse_document,
)


class Command(BaseCommand):
    help = (
        "Import services from FILE ('-' for stdin): the seed's config/services.json shape or "
        "the noc-services/1 format of export_services. Upserts by id; idempotent."
    )

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

    def handle(self, *args, file: str, dry_run: bool, partial: bool, **options) -> None:
        try:
            entries = parse_document(self.read(file))
        except ImportFileError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        result = import_entries(
            entries, dry_run=dry_run, partial=partial, progress_stream=self.stderr
        )
        for message in result.errors():
            self.stderr.write(message)
        if result.ignored_seed_keys():
            self.stderr.write(f"ignored seed keys: {', '.join(result.ignored_seed_keys())}")
        if dry_run or options["verbosity"] >= 2:
            self.report_plan(result)
        self.stdout.write(result.summary())
        invalid = len(result.of(INVALID))
        if invalid and not partial:
            raise CommandError(f"{invalid} invalid entr{'y' if invalid == 1 else 'ies'} in {file}")

    def read(self, file: str) -> str:
        if file == "-":
            return sys.stdin.read()
        try:
            return Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror or exc}") from exc

    def report_plan(self, result: ImportResult) -> None:
        verb = {CREATE: "create", UPDATE: "update", UNCHANGED: "unchanged"}
        for planned in result.planned:
            if planned.action == INVALID:
                continue
            fields = f": {', '.join(sorted(planned.changes))}" if planned.changes else ""
            self.stdout.write(f"{verb[planned.action]} {planned.entry.service_id}{fields}")
