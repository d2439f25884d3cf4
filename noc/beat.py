"""Beat entries, declared here in code and synced into django-celery-beat (editable in the admin).

Apps add theirs with `register`; `sync_schedule()` runs from `manage.py up` and `sync_beat`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BeatEntry:
    name: str
    task: str
    every_seconds: float
    queue: str = "default"
    expires_seconds: float | None = None  # defaults to the period: a stale run is pointless


ENTRIES: dict[str, BeatEntry] = {}


def register(entry: BeatEntry) -> None:
    ENTRIES[entry.name] = entry


def sync_schedule() -> int:
    """Create or update one PeriodicTask per entry; leaves admin-disabled tasks disabled."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for entry in ENTRIES.values():
        micro = entry.every_seconds < 1
        every = int(entry.every_seconds * 1_000_000) if micro else int(entry.every_seconds)
        period = IntervalSchedule.MICROSECONDS if micro else IntervalSchedule.SECONDS
        # Not get_or_create: (every, period) is not unique in django-celery-beat, and the admin
        # lets anyone add a second "every 15 seconds".
        interval = IntervalSchedule.objects.filter(every=every, period=period).order_by(
            "id"
        ).first() or IntervalSchedule.objects.create(every=every, period=period)
        PeriodicTask.objects.update_or_create(
            name=entry.name,
            defaults={
                "task": entry.task,
                "interval": interval,
                "queue": entry.queue,
                "expire_seconds": int(entry.expires_seconds or max(entry.every_seconds, 1)),
            },
        )
    return len(ENTRIES)
