"""Reads of the dashboard's "Alerts firing" section: the active alerts of the observability
app's rules, within the dashboard's tag and critical filters, in one query."""

from __future__ import annotations

from django.db.models import Count, Window

from observability.choices import AlertStatus
from observability.models import Alert
from observability.queries import alerts_by_severity
from services.models import Service
from web.queries.dashboard import Filters

LIMIT = 20


def alerts_firing(filters: Filters) -> list[Alert]:
    """The first LIMIT active alerts by severity then newest, each with `total` (how many are
    active within the filters). With a tag or critical filter, only the alerts of rules about a
    service the filter keeps (a rule about no service belongs to no tag)."""
    found = alerts_by_severity().filter(status=AlertStatus.ACTIVE)
    found = found.select_related("rule", "rule__service")
    if filters.tag or filters.critical is not None:
        found = found.filter(rule__service__in=Service.objects.filter(filters.scope()))
    found = found.annotate(total=Window(Count("id")))
    return list(
        found.only(
            "id", "labels", "severity", "started_at", "fired_at", "value", "last_value",
            "silenced_until", "acknowledged_at", "rule__name", "rule__service__name",
        )[:LIMIT]
    )  # fmt: skip
