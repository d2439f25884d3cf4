"""Celery tasks of the collectors app: dispatch executions to the collectors queue, run them,
find dead runs, delete old ones."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from collectors import actions, execution
from collectors.actions import Slot
from noc.beat import BeatEntry, register
from noc.outages import CONNECTION_ERRORS, Outage

logger = logging.getLogger(__name__)

QUEUE = "collectors"
DISPATCH_DATABASE = Outage("PostgreSQL, for the collector dispatcher", logger)
RECORDING_DATABASE = Outage("PostgreSQL, for recording collector executions", logger)


@shared_task(name="collectors.dispatch", soft_time_limit=20, time_limit=30)
def dispatch() -> int:
    """Claim due executions (and those whose worker died) and enqueue them in batches."""
    try:
        now = timezone.now()
        slots = actions.collector_runs_claim_due(now=now)
        slots += actions.collector_runs_reclaim_expired(now=now)
    except CONNECTION_ERRORS as exc:
        DISPATCH_DATABASE.failed(exc)
        return 0
    DISPATCH_DATABASE.ok()
    size = settings.COLLECTOR_DISPATCH_BATCH_SIZE
    for start in range(0, len(slots), size):
        batch = [slot.as_message() for slot in slots[start : start + size]]
        run_collectors.apply_async(args=[batch], queue=QUEUE)
    return len(slots)


@shared_task(name="collectors.run", soft_time_limit=150, time_limit=180)
def run_collectors(batch: list[list]) -> int:
    """Execute one batch of [run id, due ISO time] slots. Idempotent: a slot whose claim is
    gone (recorded already, or its run stopped) writes nothing."""
    try:
        recorded = execution.run_slots([Slot.from_message(m) for m in batch])
    except CONNECTION_ERRORS as exc:
        RECORDING_DATABASE.failed(exc)
        return 0
    RECORDING_DATABASE.ok()
    return len(recorded)


@shared_task(name="collectors.mark_dead", soft_time_limit=30, time_limit=60)
def mark_dead() -> int:
    return len(actions.collector_runs_mark_dead())


@shared_task(name="collectors.cleanup", soft_time_limit=120, time_limit=180)
def cleanup() -> int:
    """Delete stopped runs older than COLLECTOR_RUN_RETENTION_DAYS."""
    return actions.collector_runs_cleanup()


register(
    BeatEntry("collectors: dispatch due executions", "collectors.dispatch", 1, queue="dispatch")
)
register(BeatEntry("collectors: mark dead runs", "collectors.mark_dead", 30))
register(BeatEntry("collectors: delete old stopped runs", "collectors.cleanup", 3600))
