"""Automatic open and resolve, evaluated as each check result is recorded (inside the same
transaction, with the service row locked by the recorder), so time to detect is the check
interval and not a later sweep.

Evaluation never costs a result: each service's evaluation runs in a savepoint, and an error
in it (a bug, an operator's change racing the worker) is logged and rolled back to that
savepoint while the batch's results are committed. The next result evaluates again."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from incidents import actions
from incidents.choices import ACTIVE_STATUSES, EventKind, IncidentSource, IncidentStatus
from incidents.models import Incident
from services.choices import ResultStatus
from services.models import Service

logger = logging.getLogger(__name__)

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
    something (a failure past the threshold, a recovery of a service with an incident) do more.

    A service with several results in one batch (a re-dispatched slot beside a fresh one, the
    periods a silent push job missed) is evaluated once, on its newest: the service's counters
    are those after the whole batch; an open incident counts every failure of the batch."""
    latest = {}
    failures: dict[str, int] = {}
    for item in recorded:
        row = item.row
        if row.in_maintenance or row.status == ResultStatus.MISSED:
            continue
        if row.status == ResultStatus.DOWN:
            failures[item.service_id] = failures.get(item.service_id, 0) + 1
        kept = latest.get(item.service_id)
        if kept is None or row.time >= kept.row.time:
            latest[item.service_id] = item
    if not latest:
        return
    active = {
        incident.service_id: incident
        for incident in Incident.objects.filter(
            service_id__in=latest.keys(), status__in=ACTIVE_STATUSES
        )
    }
    acting = [
        item
        for item in latest.values()
        if may_act(item.state, item.row, active.get(item.service_id))
    ]
    if not acting:
        return
    services = Service.objects.in_bulk([item.service_id for item in acting])
    for item in acting:
        if item.service_id not in services:
            continue
        item.service = services[item.service_id]
        try:
            with transaction.atomic():
                evaluate(
                    item.service,
                    item.result,
                    active.get(item.service_id),
                    failures.get(item.service_id, 0),
                )
        except Exception:
            logger.exception(
                "incident evaluation of %s at %s failed; the result is recorded",
                item.service_id,
                item.row.time.isoformat(),
            )


def may_act(service, result, active: Incident | None) -> bool:
    """Whether evaluating `result` can write anything (most results cannot: no savepoint)."""
    if result.status == ResultStatus.DOWN:
        return active is not None or service.consecutive_failures >= service.failure_threshold
    return (
        active is not None
        and active.source == IncidentSource.CHECK
        and service.consecutive_successes >= service.success_threshold
    )


def evaluate(service, result, active: Incident | None, failures: int = 1) -> None:
    if result.status == ResultStatus.DOWN:
        on_failure(service, result, active, failures)
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


def on_failure(service, result, active: Incident | None, failures: int = 1) -> None:
    if active is not None:
        actions.incident_count_failure(incident=active, count=failures)
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
        try:
            actions.incident_reopen_for_failure(
                incident=recent,
                evidence=evidence_of(result),
                still_failing=resolved_while_failing(recent, service.id, result.time),
            )
            return
        except actions.TransitionNotAllowed:
            pass  # an operator closed it meanwhile: this failure opens a new incident
        except actions.AlreadyActive as race:
            actions.incident_count_failure(incident=race.existing)
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


def resolved_while_failing(incident: Incident, service_id: str, failure: datetime) -> bool:
    """Whether a resolved incident was resolved while its service kept failing: resolved by a
    person (not by a recovery), and the failing streak that `failure` belongs to had already
    begun at that moment."""
    resolution = incident.events.filter(kind=EventKind.RESOLVED).order_by("-time", "-id").first()
    if resolution is None or resolution.data.get("automatic"):
        return False
    return impact_start(service_id, failure) <= incident.resolved_at


def impact_start(service_id: str, until: datetime) -> datetime:
    """The first failing check of the current streak (it may precede opening)."""
    with connection.cursor() as cursor:
        cursor.execute(FIRST_FAILURE_OF_STREAK, {"service": service_id, "until": until})
        first = cursor.fetchone()[0]
    return first or until


def on_success(service, result, active: Incident) -> None:
    if service.consecutive_successes >= service.success_threshold:
        # An operator may have resolved or closed it since the batch read it: nothing to do.
        with contextlib.suppress(actions.TransitionNotAllowed):
            actions.incident_resolve(
                incident=active, evidence=evidence_of(result) | {"automatic": True}
            )
