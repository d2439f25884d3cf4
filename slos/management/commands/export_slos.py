"""`manage.py export_slos`: every SLO's configuration in the noc-slos/1 format, which
import_slos reads back."""

from __future__ import annotations

from noc.importing import ExportCommand
from slos.importing import export_json


class Command(ExportCommand):
    help = "Export the configuration of every SLO as JSON (stdout, or --output FILE)."
    noun = "SLO(s)"

    def document(self) -> tuple[str, int]:
        return export_json()
