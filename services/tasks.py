"""Celery tasks of the services app: thin wrappers over actions and execution."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from noc.beat import BeatEntry, register
from noc.outages import CONNECTION_ERRORS, Outage
from services import actions, execution
from services.actions import Slot

logger = logging.getLogger(__name__)

# run_checks is killed past its soft limit and every slot of its batch is recorded missed. A
# batch runs its checks concurrently, so it lasts about as long as its slowest check: validation
# refuses a service whose worst case (timeout × attempts + the pauses between them) exceeds
# MAX_CHECK_SECONDS, leaving the rest of the limit for early starts and the write.
RUN_CHECKS_SOFT_TIME_LIMIT = 300
RUN_CHECKS_TIME_LIMIT = 330
MAX_CHECK_SECONDS = 240


DISPATCH_DATABASE = Outage("PostgreSQL, for the check dispatcher", logger)
RECORDING_DATABASE = Outage("PostgreSQL, for recording check results", logger)


@shared_task(name="services.dispatch", soft_time_limit=20, time_limit=30)
def dispatch() -> int:
    """Claim due checks (and slots whose worker died) and enqueue them in batches. While
    PostgreSQL is away it logs that once and does nothing: the slots it could not reach are
    recorded missed when it is back (actions.checks_claim_due)."""
    try:
        count = _dispatch()
    except CONNECTION_ERRORS as exc:
        DISPATCH_DATABASE.failed(exc)
        return 0
    DISPATCH_DATABASE.ok()
    return count


def _dispatch() -> int:
    now = timezone.now()
    slots = actions.checks_claim_due(now=now) + actions.checks_reclaim_expired(now=now)
    actions.check_gaps_record()
    actions.push_overdue_record(now=now)
    size = settings.NOC_DISPATCH_BATCH_SIZE
    for start in range(0, len(slots), size):
        batch = [slot.as_message() for slot in slots[start : start + size]]
        run_checks.apply_async(args=[batch], queue="checks")
    return len(slots)


@shared_task(
    name="services.run_checks",
    soft_time_limit=RUN_CHECKS_SOFT_TIME_LIMIT,
    time_limit=RUN_CHECKS_TIME_LIMIT,
)
def run_checks(batch: list[list[str]]) -> int:
    """Run one batch of [service_id, due ISO time] slots and record the results. Idempotent:
    a slot already recorded is skipped, so a re-delivered batch does no harm. Results that
    cannot be written (PostgreSQL away) are dropped with one log line per outage: their claims
    stay, and the dispatcher hands the slots out again or records them missed."""
    try:
        recorded = execution.run_slots([Slot.from_message(m) for m in batch])
    except CONNECTION_ERRORS as exc:
        RECORDING_DATABASE.failed(exc)
        return 0
    RECORDING_DATABASE.ok()
    return len(recorded)


register(BeatEntry("services: dispatch due checks", "services.dispatch", 1, queue="dispatch"))
