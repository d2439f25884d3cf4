"""When maintenance windows happen: the occurrence covering a moment and the next one."""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import CroniterError, croniter

from services.models import MaintenanceWindow


def next_occurrence(
    window: MaintenanceWindow, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """When the window next starts after `now` and when that occurrence ends (None, None
    when it never starts again)."""
    if not window.cron:
        if window.starts_at is not None and window.starts_at > now:
            return window.starts_at, window.ends_at
        return None, None
    try:
        start = croniter(window.cron, max(now, window.starts_at or now), second_at_beginning=True)
        moment = start.get_next(datetime)
    except (CroniterError, ValueError):
        return None, None
    if window.ends_at is not None and moment >= window.ends_at:
        return None, None
    return moment, moment + timedelta(minutes=window.duration_minutes or 0)


def current_occurrence(
    window: MaintenanceWindow, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """Start and end of the occurrence that covers `now` (call it when window.covers(now))."""
    if not window.cron:
        return window.starts_at, window.ends_at
    try:
        starts = croniter(window.cron, now + timedelta(seconds=1), second_at_beginning=True)
        start = starts.get_prev(datetime)
    except (CroniterError, ValueError):
        return None, None
    end = start + timedelta(minutes=window.duration_minutes or 0)
    return start, min(end, window.ends_at) if window.ends_at else end
