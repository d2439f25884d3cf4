"""Load every fixture under fixtures/ in name order; loaddata upserts by primary key, so this is
idempotent."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Load the demo fixtures (idempotent)."

    def handle(self, *args, **options) -> None:
        fixtures = sorted((settings.BASE_DIR / "fixtures").glob("*.json"))
        for fixture in fixtures:
            call_command("loaddata", str(fixture), verbosity=options["verbosity"])
        self.stdout.write(f"Loaded {len(fixtures)} demo fixture file(s).")
