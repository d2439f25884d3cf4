"""Beat tasks of the time-series layer: partitions/policies and native rollups."""

from __future__ import annotations

from celery import shared_task
from django.db import connection

from noc.beat import BeatEntry, register
from noc.timeseries import maintenance
from noc.timeseries.rollups import ROLLUPS, is_native, refresh


@shared_task(name="noc.timeseries_maintain", soft_time_limit=300, time_limit=360)
def timeseries_maintain() -> dict:
    """Create partitions ahead and drop expired ones (native); keep policies (timescale)."""
    return maintenance.maintain_all()


@shared_task(name="noc.rollups_refresh", soft_time_limit=60, time_limit=90)
def rollups_refresh() -> dict[str, int]:
    """Recompute recent buckets of every native rollup (TimescaleDB refreshes its own)."""
    written = {}
    for rollup in ROLLUPS.values():
        if is_native(rollup):
            written[rollup.name] = refresh(rollup)
    connection.close_if_unusable_or_obsolete()
    return written


register(BeatEntry("timeseries: partitions and policies", "noc.timeseries_maintain", 3600))
register(BeatEntry("timeseries: refresh rollups", "noc.rollups_refresh", 15))
