"""`manage.py export_incidents`: every incident with its timeline in the noc-incidents/1 format,
which import_incidents reads back."""

from __future__ import annotations

from incidents.importing import export_json
from noc.importing import ExportCommand


class Command(ExportCommand):
    help = "Export every incident and its timeline as JSON (stdout, or --output FILE)."
    noun = "incident(s)"

    def document(self) -> tuple[str, int]:
        return export_json()
