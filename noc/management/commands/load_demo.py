"""Load the demo fixtures under fixtures/ in name order, idempotently: an object that already
exists is left as it is, so a restart neither duplicates demo data nor undoes an operator's
edits to it.

The fixtures name the default ports (the NOC on 8000, the demo target on 8001), so that
`manage.py loaddata` works on its own; this command points new demo services at the ports this
installation uses (`NOC_PORT`, `NOC_DEMO_PORT`)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core import serializers
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from services.actions import initial_next_check
from services.models import Service

FIXTURE_HOST = "127.0.0.1"
FIXTURE_NOC_PORT = 8000
FIXTURE_DEMO_PORT = 8001


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
                            if isinstance(item.object, Service):
                                localize(item.object)
                                # A new service: a phase of its own from now, not the
                                # fixture's old due time (nothing was missed before it).
                                item.object.next_check_at = initial_next_check(
                                    item.object, timezone.now()
                                )
                            item.save()
                            added += 1
        self.stdout.write(f"Loaded {added} new demo object(s).")


def localize(service: Service) -> None:
    """Point a demo service written for the default ports at the configured ones."""
    ports = {FIXTURE_NOC_PORT: settings.NOC_PORT, FIXTURE_DEMO_PORT: settings.NOC_DEMO_PORT}
    if service.url:
        parts = urlsplit(service.url)
        if parts.hostname == FIXTURE_HOST and parts.port in ports:
            netloc = f"{FIXTURE_HOST}:{ports[parts.port]}"
            service.url = parts._replace(netloc=netloc).geturl()
    if service.host == FIXTURE_HOST and service.port in ports:
        service.port = ports[service.port]
    default_base = f"http://{FIXTURE_HOST}:{FIXTURE_NOC_PORT}/"
    service.description = service.description.replace(
        default_base, settings.NOC_PUBLIC_URL.rstrip("/") + "/"
    )
