"""Reads of an incident's page: the incident with its timeline, the failing checks that are
its evidence, the SLO alerts that opened or joined it, and whom it may be assigned to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from accounts.models import User
from incidents.models import Incident
from incidents.queries import incidents_with_timeline
from services.choices import ResultStatus
from services.models import CheckResult
from slos.models import SLOAlert

EVIDENCE_LIMIT = 20


@dataclass(frozen=True)
class IncidentPage:
    now: datetime
    incident: Incident
    failing_checks: list[CheckResult]  # newest first, at most EVIDENCE_LIMIT
    slo_alerts: list[SLOAlert]
    assignees: list[User]  # empty unless the reader may assign


def incident_detail(pk: int) -> Incident:
    """The incident with its service, the people it names and its timeline (two queries);
    raises Incident.DoesNotExist."""
    return incidents_with_timeline().get(pk=pk)


def incident_page(
    incident: Incident, *, with_assignees: bool, now: datetime | None = None
) -> IncidentPage:
    now = now or timezone.now()
    return IncidentPage(
        now=now,
        incident=incident,
        failing_checks=failing_checks(incident, now),
        slo_alerts=list(
            SLOAlert.objects.filter(incident=incident).select_related("slo").order_by("-fired_at")
        ),
        assignees=list(User.objects.filter(is_active=True).order_by("username"))
        if with_assignees
        else [],
    )


def failing_checks(incident: Incident, now: datetime) -> list[CheckResult]:
    """The service's failed checks from the impact's start until it was resolved (or now)."""
    until = incident.resolved_at or now
    return list(
        CheckResult.objects.filter(
            service_id=incident.service_id,
            time__gte=incident.impact_started_at,
            time__lte=until,
            status=ResultStatus.DOWN,
        ).order_by("-time")[:EVIDENCE_LIMIT]
    )
