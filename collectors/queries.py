"""Reads of the collectors app used by the API, the admin and the dashboard."""

from __future__ import annotations

from django.db.models import QuerySet

from collectors.choices import RunStatus
from collectors.models import CollectorRun


def runs_in_error(*, limit: int | None = None) -> list[CollectorRun]:
    """Runs in error (dead or refused), newest first, with their collectors: for the
    dashboard. Each has `last_error` saying why."""
    found = (
        CollectorRun.objects.filter(status=RunStatus.ERROR)
        .select_related("collector")
        .order_by("-stopped_at", "-id")
    )
    return list(found[:limit] if limit else found)


def active_runs() -> QuerySet[CollectorRun]:
    """Running and erroring runs (the seed's status list), oldest start first."""
    return (
        CollectorRun.objects.filter(status__in=(RunStatus.RUNNING, RunStatus.ERROR))
        .select_related("collector")
        .order_by("started_at", "id")
    )
