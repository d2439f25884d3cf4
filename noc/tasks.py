"""Beat tasks of the time-series layer: partitions/policies and native rollups."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection

from noc.beat import BeatEntry, register
from noc.timeseries import maintenance, partitions
from noc.timeseries.rollups import ROLLUPS, is_native, refresh

logger = logging.getLogger(__name__)


@shared_task(name="noc.timeseries_maintain", soft_time_limit=300, time_limit=360)
def timeseries_maintain() -> dict:
    """Create partitions ahead and drop expired ones (native); keep policies (timescale);
    schedule the partition indexes still to build, one task each."""
    return maintenance.maintain_all(schedule_index_build=_schedule_index_build)


def _schedule_index_build(table: str, partition: str, suffix: str) -> None:
    # Expires before the next hourly run schedules it again: at most one waits per index.
    timeseries_index_build.apply_async((table, partition, suffix), expires=INDEX_BUILD_EXPIRES)


# A day's partition index (the log lines' trigram index on a busy day: tens of millions of
# lines) may take longer than the maintenance task may run. Its own task gets hours; one the
# soft limit stops cancels its build, which the next hourly run schedules again (dropping
# the invalid index the cancelled build left).
#
# Hours are longer than the broker's visibility timeout (CELERY_VISIBILITY_TIMEOUT, 1 h): a
# late-acknowledged message still running then is delivered again to another worker, every
# hour, for a run its advisory lock turns away. So this task is acknowledged when it starts,
# not when it ends: a run lost with its worker costs nothing, since the hourly maintenance
# task schedules every closed day still without a valid index again (and the next run drops
# the invalid index the lost one left).
INDEX_BUILD_SOFT_LIMIT = 4 * 3600
INDEX_BUILD_EXPIRES = 3000


@shared_task(
    name="noc.timeseries_index_build",
    soft_time_limit=INDEX_BUILD_SOFT_LIMIT,
    time_limit=INDEX_BUILD_SOFT_LIMIT + 300,
    acks_late=False,
    reject_on_worker_lost=False,
)
def timeseries_index_build(table: str, partition: str, suffix: str) -> str:
    """Build one partition's index (CONCURRENTLY) if its policy still wants it. Idempotent and
    safe when two workers run it at once; one build runs at a time in the installation (an
    advisory lock: the others answer "busy" at once, so a backlog of days holds one of the
    jobs worker's processes, not all: a backlog of days is built one an hour, newest first);
    an invalid index a stopped build left is dropped and built again."""
    try:
        return partitions.build_partition_index(table, partition, suffix)
    except SoftTimeLimitExceeded:
        # The server would go on building for a client that left: cancel, then let the
        # connection go (the session's advisory lock with it).
        raw = connection.connection
        if raw is not None:
            raw.cancel()
        connection.close()
        logger.warning("timeseries: the build of %s's %s index was stopped by the time limit",
                       partition, suffix)  # fmt: skip
        return "stopped"


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
