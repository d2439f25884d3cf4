"""`manage.py import_slos FILE`: create or update SLOs from the seed's data/slos/slos.json (or its
config/slos.json) or an export_slos file, all or nothing (unless --partial)."""

from __future__ import annotations

from noc.importing import Entry, ImportCommand, ImportResult, read_text
from slos.importing import import_entries, parse_document


class Command(ImportCommand):
    help = (
        "Import SLOs from FILE ('-' for stdin): the seed's slos.json shape or the noc-slos/1 "
        "format of export_slos. Upserts by id; idempotent."
    )

    def parse(self, file: str) -> list[Entry]:
        return parse_document(read_text(file))

    def run_import(self, entries: list[Entry], *, dry_run: bool, partial: bool) -> ImportResult:
        return import_entries(
            entries, dry_run=dry_run, partial=partial, progress_stream=self.stderr
        )
