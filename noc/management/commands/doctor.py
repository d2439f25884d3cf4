"""`manage.py doctor`: validate the migrated database and the services the project needs."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from noc import doctor


class Command(BaseCommand):
    help = (
        "Check migrations, tables, foreign keys, indexes, extensions, Redis, the Celery broker "
        "and Elasticsearch; exit non-zero when anything is wrong."
    )

    def handle(self, *args, **options) -> None:
        findings = doctor.run_checks()
        for finding in findings:
            self.stdout.write(str(finding))
        problems = doctor.problems(findings)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) found.")
        self.stdout.write("All checks passed.")
