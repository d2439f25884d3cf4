from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from noc import runner


class Command(BaseCommand):
    help = "Migrate, load demo data, then run web, worker and beat together until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=settings.NOC_HOST)
        parser.add_argument("--port", type=int, default=settings.NOC_PORT)

    def handle(self, *args, host: str, port: int, **options) -> None:
        try:
            code = runner.run(host=host, port=port, out=self.stdout)
        except runner.AlreadyRunning as exc:
            raise CommandError(str(exc)) from exc
        if code:
            raise CommandError("a process stopped unexpectedly; see the log above.")
