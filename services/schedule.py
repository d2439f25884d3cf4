"""Where a service's slots fall: its grid (an interval from its phase, or a cron), which slot a
late dispatcher still runs, and which slots it records as missed instead.

The dispatcher runs a slot it claims late only within a tenth of the service's interval (and
MAX_SLOT_AGE); a slot handed out again (its worker died) or reaching a worker late is run only
while its service's next slot is not due yet. Every other slot is recorded `missed`. A service
never leaves its grid, so an outage can neither lose slots silently nor line a fleet up on one
second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import CroniterError, croniter
from django.conf import settings

from services.models import Service

# A check never starts more than this after its slot: later, its result would describe a
# moment it was not taken at. (A dispatched batch gets longer, see actions.MAX_RUN_DELAY.)
MAX_SLOT_AGE = timedelta(minutes=5)
# The dispatcher still runs a slot it claims this late, as a share of the service's interval
# (dispatch jitter); later, the slot is missed. Running every late slot at once after an outage
# would start a whole interval's worth of checks in the same second.
LATE_SHARE = 0.1


@dataclass(frozen=True)
class Plan:
    """What the dispatcher does with a service it claimed at `now`."""

    run: datetime | None  # the slot to run; None when even the latest one is too old
    gap_from: datetime | None  # first slot to record as missed (None: none)
    gap_until: datetime | None  # ... up to, not including, this one
    next: datetime | None  # the service's next due time; None when its cron never fires again


def step_of(service: Service) -> timedelta | None:
    """The grid's step for an interval service; None for a cron one."""
    if service.cron:
        return None
    return timedelta(seconds=service.interval_seconds or 60)


def latest_slot(service: Service, due: datetime, now: datetime) -> datetime:
    """The last slot of the service's grid at or before `now`, starting from `due` (a slot on
    the grid); `due` itself when it is not yet reached (the dispatcher looks ahead)."""
    if due >= now:
        return due
    step = step_of(service)
    if step is not None:
        return due + ((now - due) // step) * step
    previous = croniter(service.cron, now, second_at_beginning=True).get_prev(datetime)
    following = croniter(service.cron, previous, second_at_beginning=True).get_next(datetime)
    latest = following if following <= now else previous
    return max(latest, due)


def gap_floor(service: Service, now: datetime) -> datetime:
    """No missed slot is recorded before the service existed (fixtures carry old due times) or
    before the raw results' retention (those rows would be dropped at once)."""
    retention = timedelta(days=settings.NOC_CHECK_RESULTS_RETENTION_DAYS)
    floor = now - retention
    created = getattr(service, "created_at", None)
    return max(floor, created) if isinstance(created, datetime) else floor


def first_slot_from(service: Service, due: datetime, floor: datetime) -> datetime:
    """The first slot of the grid through `due` that is at or after `floor`."""
    if due >= floor:
        return due
    step = step_of(service)
    if step is not None:
        return due - ((due - floor) // step) * step
    return croniter(service.cron, floor, second_at_beginning=True).get_next(datetime)


def plan_claim(service: Service, now: datetime) -> Plan:
    """The service is due (`next_check_at` at or before now + the dispatcher's lookahead): run
    its latest slot if that is late by less than a tenth of its interval, record every slot
    before it (and it, when later than that) as missed, and move its due time to the next slot
    of the same grid after now, so it keeps its own phase."""
    due = service.next_check_at
    try:
        latest = latest_slot(service, due, now)
        upcoming: datetime | None = service.next_slot_after(latest)
    except CroniterError:
        # A cron that stopped firing (its years ran out, or a date that never comes): its due
        # slot is its last.
        latest, upcoming = due, None
    run = latest if latest >= now - late_tolerance(service, latest, upcoming) else None
    gap_until = latest if run is not None else upcoming or latest + timedelta(microseconds=1)
    try:
        gap_from = first_slot_from(service, due, gap_floor(service, now))
    except CroniterError:
        gap_from = due
    if gap_from >= gap_until:
        gap_from = gap_until = None
    return Plan(run=run, gap_from=gap_from, gap_until=gap_until, next=upcoming)


def on_time(
    due: datetime, interval_seconds: int | None, cron: str, now: datetime
) -> timedelta | None:
    """plan_claim's answer for the common case, from a service's row values: an interval
    service claimed within its late tolerance runs its due slot, records no gap, and is due
    again one step later. Returns that step, or None when plan_claim must decide."""
    if cron:
        return None
    step = timedelta(seconds=interval_seconds or 60)
    if due < now - min(step * LATE_SHARE, MAX_SLOT_AGE):
        return None
    return step


def late_tolerance(service: Service, slot: datetime, upcoming: datetime | None) -> timedelta:
    """How late the dispatcher may still run `slot`: a tenth of the service's interval (the
    time to its next slot), never more than MAX_SLOT_AGE."""
    period = (upcoming - slot) if upcoming is not None else MAX_SLOT_AGE
    return min(period * LATE_SHARE, MAX_SLOT_AGE)


def superseded(service: Service, slot: datetime, now: datetime) -> bool:
    """Whether the service's slot after `slot` is already due: running `slot` now would be
    late and off its grid, so it is recorded missed instead."""
    try:
        return service.next_slot_after(slot) <= now
    except CroniterError:
        return slot < now - MAX_SLOT_AGE


def cron_slots(cron: str, first: datetime, until: datetime, limit: int) -> list[datetime]:
    """Firings of `cron` from `first` (a firing) up to, not including, `until`; at most `limit`."""
    found: list[datetime] = []
    moment = first
    try:
        firings = croniter(cron, first, second_at_beginning=True)
        while moment < until and len(found) < limit:
            found.append(moment)
            moment = firings.get_next(datetime)
    except CroniterError:
        pass  # the cron ran out of years: nothing after
    return found
