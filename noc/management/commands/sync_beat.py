from django.core.management.base import BaseCommand

from noc.beat import sync_schedule


class Command(BaseCommand):
    help = "Create or update the periodic tasks declared in code (noc/beat.py and the apps)."

    def handle(self, *args, **options) -> None:
        count = sync_schedule()
        self.stdout.write(f"{count} periodic task(s) in sync.")
