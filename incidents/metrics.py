"""Incident gauges for /metrics (registered into services.metrics by the app config)."""

from __future__ import annotations

from django.db.models import Count

from incidents.choices import ACTIVE_STATUSES
from incidents.models import Incident


def incident_families(out) -> None:
    active = (
        Incident.objects.filter(status__in=ACTIVE_STATUSES)
        .values("severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_severity = {row["severity"]: row["n"] for row in active}
    out.family(
        "noc_active_incidents",
        "gauge",
        "Incidents not yet resolved, by severity.",
        [({"severity": s}, by_severity.get(s, 0)) for s in ("critical", "high", "medium", "low")],
    )
