"""Automatic open and resolve, evaluated as each check result is recorded (inside the same
transaction, with the service row locked by the recorder), so time to detect is the check
interval and not a later sweep."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from incidents import actions
from incidents.choices import ACTIVE_STATUSES, IncidentSource, IncidentStatus
from incidents.models import Incident
from services.choices import ResultStatus

FIRST_FAILURE_OF_STREAK = """
    SELECT min(time) FROM services_checkresult
    WHERE service_id = %(service)s AND time <= %(until)s AND status = 'down'
      AND NOT in_maintenance
      AND time > coalesce((SELECT max(time) FROM services_checkresult
                           WHERE service_id = %(service)s AND time < %(until)s
                             AND status IN ('up', 'degraded')), '-infinity')
"""


def on_check_results(sender, recorded, **kwargs) -> None:
    """One query finds the active incidents of the whole batch; only results that can change
    something (a failure past the threshold, a recovery of a service with an incident) do more."""
    relevant = [
        r
        for r in recorded
        if not r.result.in_maintenance and r.result.status != ResultStatus.MISSED
    ]
    if not relevant:
        return
    active = {
        incident.service_id: incident
        for incident in Incident.objects.filter(
            service_id__in={r.service.id for r in relevant}, status__in=ACTIVE_STATUSES
        )
    }
    for item in relevant:
        evaluate(item.service, item.result, active.get(item.service.id))


def evaluate(service, result, active: Incident | None) -> None:
    if result.status == ResultStatus.DOWN:
        on_failure(service, result, active)
    elif active is not None and active.source == IncidentSource.CHECK:
        on_success(service, result, active)


def evidence_of(result) -> dict:
    return {
        "check": {
            "time": result.time.isoformat(),
            "status": result.status,
            "status_code": result.status_code,
            "response_time_ms": result.response_time_ms,
            "error": result.error,
        }
    }


def on_failure(service, result, active: Incident | None) -> None:
    if active is not None:
        actions.incident_count_failure(incident=active)
        return
    if service.consecutive_failures < service.failure_threshold:
        return
    recent = (
        Incident.objects.filter(
            service=service, source=IncidentSource.CHECK, status=IncidentStatus.RESOLVED
        )
        .order_by("-resolved_at")
        .first()
    )
    window = timedelta(minutes=settings.INCIDENT_REOPEN_MINUTES)
    if recent is not None and recent.resolved_within(window, result.time):
        actions.incident_reopen_for_failure(incident=recent, evidence=evidence_of(result))
        return
    try:
        actions.incident_open(
            service=service,
            source=IncidentSource.CHECK,
            impact_started_at=impact_start(service.id, result.time),
            summary=result.error,
            evidence=evidence_of(result) | {"consecutive_failures": service.consecutive_failures},
        )
    except actions.AlreadyActive as race:
        actions.incident_count_failure(incident=race.existing)


def impact_start(service_id: str, until: datetime) -> datetime:
    """The first failing check of the current streak (it may precede opening)."""
    with connection.cursor() as cursor:
        cursor.execute(FIRST_FAILURE_OF_STREAK, {"service": service_id, "until": until})
        first = cursor.fetchone()[0]
    return first or until


def on_success(service, result, active: Incident) -> None:
    if service.consecutive_successes >= service.success_threshold:
        actions.incident_resolve(
            incident=active, evidence=evidence_of(result) | {"automatic": True}
        )
