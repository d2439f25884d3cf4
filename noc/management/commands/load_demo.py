"""Load the demo fixtures under fixtures/ in name order, idempotently: an object that already
exists is left as it is, so a restart neither duplicates demo data nor undoes an operator's
edits to it."""

from django.conf import settings
from django.core import serializers
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Load the demo fixtures (objects that already exist are kept as they are)."

    def handle(self, *args, **options) -> None:
        added = 0
        with transaction.atomic():
            for fixture in sorted((settings.BASE_DIR / "fixtures").glob("*.json")):
                with open(fixture) as stream:
                    for item in serializers.deserialize("json", stream):
                        model = type(item.object)
                        if not model._default_manager.filter(pk=item.object.pk).exists():
                            item.save()
                            added += 1
        self.stdout.write(f"Loaded {added} new demo object(s).")
