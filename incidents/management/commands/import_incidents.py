"""`manage.py import_incidents FILE|DIR`: create or update incidents, with their timelines, from
the seed's data/incidents/*.json or an export_incidents file, all or nothing (unless
--partial)."""

from __future__ import annotations

from incidents.importing import import_entries, parse_documents
from noc.importing import Entry, ImportCommand, ImportResult, each_file


class Command(ImportCommand):
    help = (
        "Import incidents from FILE, from every *.json in a directory (the seed's "
        "data/incidents/), or from stdin ('-'): the seed's shape or the noc-incidents/1 format of "
        "export_incidents. Seed incidents are known by their id, ours by theirs; idempotent."
    )

    def parse(self, file: str) -> list[Entry]:
        return parse_documents(each_file(file))

    def run_import(self, entries: list[Entry], *, dry_run: bool, partial: bool) -> ImportResult:
        return import_entries(
            entries, dry_run=dry_run, partial=partial, progress_stream=self.stderr
        )
