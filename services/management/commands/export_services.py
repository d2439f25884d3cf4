"""`manage.py export_services`: every service's configuration in the noc-services/1 format,
which import_services reads back."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from services.importing import export_json
from services.models import Service


class Command(BaseCommand):
    help = "Export the configuration of every service as JSON (stdout, or --output FILE)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", help="Write to this file instead of stdout.")

    def handle(self, *args, output: str | None, **options) -> None:
        services = list(Service.objects.order_by("id"))
        text = export_json(services)
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from exc
        self.stderr.write(f"exported {len(services)} service(s) to {output}")
