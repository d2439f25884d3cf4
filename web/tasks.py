"""Celery tasks of the console: the status page rendered ahead, on a worker."""

from __future__ import annotations

from celery import shared_task

from noc.beat import BeatEntry, register
from web.views import status


@shared_task(name="web.status_page_refresh", soft_time_limit=25, time_limit=28)
def status_page_refresh() -> int:
    """Render the public status page into the cache (idempotent: the latest render wins)."""
    return status.status_page_refresh()


register(
    BeatEntry(
        "web: render the status page", "web.status_page_refresh",
        status.STATUS_PAGE_REFRESH_SECONDS,
    )
)  # fmt: skip
