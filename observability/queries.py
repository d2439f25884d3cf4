"""Reads of the observability app that other apps and the dashboard use."""

from __future__ import annotations

from django.db.models import Case, IntegerField, QuerySet, Value, When

from observability.choices import AlertStatus
from observability.models import Alert

SEVERITY_ORDER = ("critical", "high", "medium", "low")
STATUS_ORDER = (AlertStatus.ACTIVE, AlertStatus.PENDING, AlertStatus.RESOLVED)


def _rank(field: str, values) -> Case:
    return Case(
        *(When(**{field: value}, then=Value(rank)) for rank, value in enumerate(values)),
        default=Value(len(values)),
        output_field=IntegerField(),
    )


def alerts_by_severity() -> QuerySet[Alert]:
    """Every alert: active first, then pending, then resolved; by severity (critical first);
    newest first (the seed's "active alerts by severity, newest first")."""
    return Alert.objects.annotate(
        status_rank=_rank("status", STATUS_ORDER), severity_rank=_rank("severity", SEVERITY_ORDER)
    ).order_by("status_rank", "severity_rank", "-started_at", "-id")


def active_alerts(*, limit: int | None = None) -> list[Alert]:
    """Firing alerts by severity, newest first, with their rules (for the dashboard)."""
    found = alerts_by_severity().filter(status=AlertStatus.ACTIVE).select_related("rule")
    return list(found[:limit] if limit else found)
