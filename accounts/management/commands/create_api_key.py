from django.core.management.base import BaseCommand, CommandError

from accounts.actions import api_key_create
from accounts.models import User


class Command(BaseCommand):
    help = "Create an API key for USERNAME and print it (it cannot be shown again)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="automation")
        parser.add_argument("--expires", type=int, metavar="DAYS", help="expire after DAYS days")

    def handle(self, *args, username: str, name: str, expires: int | None, **options) -> None:
        if expires is not None and expires < 1:
            raise CommandError("--expires must be at least 1 day")
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        _, key = api_key_create(actor=None, user=user, name=name, expires_in_days=expires)
        self.stdout.write(key)
