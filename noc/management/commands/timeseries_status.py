from django.core.management.base import BaseCommand

from noc.timeseries.status import report


def human_bytes(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


class Command(BaseCommand):
    help = (
        "Show the time-series backend, partitions or hypertables, policies, rollup lag and sizes."
    )

    def handle(self, *args, **options) -> None:
        chosen, tables, rollups = report()
        self.stdout.write(f"backend for new tables: {chosen}")
        for t in tables:
            if t.backend is None:
                self.stdout.write(f"\n{t.table}: {t.note or 'missing'}")
                continue
            self.stdout.write(f"\n{t.table}: {t.backend}, {human_bytes(t.size_bytes)}")
            if t.oldest:
                self.stdout.write(
                    f"  range     {t.oldest:%Y-%m-%d %H:%M} .. {t.newest:%Y-%m-%d %H:%M} UTC"
                )
            self.stdout.write(
                f"  {'partitions' if t.backend == 'native' else 'chunks'}  {len(t.partitions)}"
            )
            for policy in t.policies:
                self.stdout.write(f"  policy    {policy}")
        self.stdout.write("\nrollups:")
        for r in rollups:
            lag = "n/a" if r.lag_seconds is None else f"{r.lag_seconds:.0f}s behind"
            took = f", last refresh {r.last_duration_ms:.0f} ms" if r.last_duration_ms else ""
            self.stdout.write(f"  {r.name}: {r.kind}, {lag}{took}")
