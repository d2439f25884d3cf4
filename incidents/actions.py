"""Writes of the incidents app: the lifecycle, each change with its timeline event (and its
audit row when a person made it) in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import Truncator

from accounts.actions import audit_create, audit_record, audit_update
from accounts.audit import snapshot
from accounts.choices import AuditAction
from incidents.choices import (
    ACTIVE_STATUSES,
    NOTIFIABLE_EVENTS,
    EventKind,
    IncidentSource,
    IncidentStatus,
    PublicPhase,
)
from incidents.models import Incident, IncidentEvent, IncidentUpdate
from noc.limits import PUBLIC_UPDATE_MAX_CHARS
from services.models import Service


class TransitionNotAllowed(Exception):
    def __init__(self, incident: Incident, wanted: str, reason: str = "") -> None:
        self.current = incident.status
        self.wanted = wanted
        self.allowed = list(incident.allowed_next())
        super().__init__(reason or f"An incident that is {incident.status} cannot become {wanted}.")


class AlreadyActive(Exception):
    def __init__(self, existing: Incident) -> None:
        self.existing = existing
        super().__init__(
            f"Service {existing.service_id} already has active incident #{existing.pk}."
        )


def event_record(
    *, incident: Incident, kind: str, actor=None, message: str = "", data: dict | None = None
) -> IncidentEvent:
    """Write a timeline event; notifiable ones get their deliveries planned (sent after commit)."""
    event = IncidentEvent.objects.create(
        incident=incident, kind=kind, actor=_person(actor), message=message, data=data or {}
    )
    if kind in NOTIFIABLE_EVENTS:
        from incidents.notifications import deliveries_plan

        deliveries_plan(event=event)
    return event


def _person(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _audit(actor, incident: Incident, verb: str, changes: dict | None = None) -> None:
    if _person(actor) is not None:
        audit_record(
            actor=actor, action=AuditAction.ACTION, instance=incident, verb=verb, changes=changes
        )


# --- opening ----------------------------------------------------------------------------------

TITLE_MAX_CHARS = Incident._meta.get_field("title").max_length


def default_title(service: Service) -> str:
    """'<name> is down', the name shortened so the title fits its column."""
    suffix = " is down"
    return Truncator(service.name).chars(TITLE_MAX_CHARS - len(suffix)) + suffix


def incident_open(
    *,
    service: Service,
    source: str,
    impact_started_at: datetime,
    title: str = "",
    summary: str = "",
    severity: str = "",
    dedup_key: str = "",
    actor=None,
    evidence: dict | None = None,
) -> Incident:
    """Open an incident, or raise AlreadyActive with the one the service already has. The
    partial unique constraint decides between concurrent openers."""
    incident = Incident(
        service=service,
        source=source,
        title=title or default_title(service),
        summary=summary,
        severity=severity or service.severity,
        dedup_key=dedup_key,
        impact_started_at=impact_started_at,
    )
    incident.full_clean(exclude=["service", "detected_at"], validate_constraints=False)
    try:
        with transaction.atomic():
            incident.save(force_insert=True)
    except IntegrityError:
        existing = Incident.objects.filter(service=service, status__in=ACTIVE_STATUSES).first()
        if existing is None:
            raise
        raise AlreadyActive(existing) from None
    incident.refresh_from_db(fields=["detected_at"])
    event_record(
        incident=incident,
        kind=EventKind.OPENED,
        actor=actor,
        message=incident.title,
        data={"source": source, "severity": incident.severity, **(evidence or {})},
    )
    if _person(actor):
        audit_create(actor=actor, instance=incident)
    return incident


# --- people's actions -------------------------------------------------------------------------


def _locked(incident: Incident) -> Incident:
    return Incident.objects.select_for_update().get(pk=incident.pk)


@transaction.atomic
def incident_acknowledge(*, incident: Incident, actor) -> Incident:
    incident = _locked(incident)
    if not incident.is_active:
        raise TransitionNotAllowed(
            incident, "acknowledged", f"A {incident.status} incident cannot be acknowledged."
        )
    if incident.acknowledged_at is not None:
        raise TransitionNotAllowed(
            incident,
            "acknowledged",
            f"Already acknowledged at {incident.acknowledged_at:%Y-%m-%d %H:%M:%S} UTC.",
        )
    incident.acknowledged_at = timezone.now()
    incident.acknowledged_by = _person(actor)
    incident.save(update_fields=["acknowledged_at", "acknowledged_by", "updated_at"])
    event_record(incident=incident, kind=EventKind.ACKNOWLEDGED, actor=actor)
    _audit(actor, incident, "acknowledge")
    return incident


@transaction.atomic
def incident_assign(*, incident: Incident, assignee, actor) -> Incident:
    if assignee is not None and not assignee.is_active:
        raise ValidationError({"assignee": [f"User {assignee.username!r} is inactive."]})
    incident = _locked(incident)
    if incident.status == IncidentStatus.CLOSED:
        raise TransitionNotAllowed(incident, "assigned", "A closed incident cannot be assigned.")
    before = incident.assignee.username if incident.assignee_id else None
    incident.assignee = assignee
    incident.save(update_fields=["assignee", "updated_at"])
    after = assignee.username if assignee else None
    event_record(
        incident=incident,
        kind=EventKind.ASSIGNED,
        actor=actor,
        message=f"Assigned to {after}" if after else "Unassigned",
        data={"from": before, "to": after},
    )
    _audit(actor, incident, "assign", {"assignee": [before, after]})
    return incident


@transaction.atomic
def incident_comment(*, incident: Incident, actor, message: str) -> IncidentEvent:
    message = (message or "").strip()
    if not message:
        raise ValidationError({"message": ["A comment cannot be empty."]})
    limit = settings.INCIDENT_COMMENT_MAX_CHARS
    if len(message) > limit:
        raise ValidationError(
            {"message": [f"A comment is at most {limit} characters ({len(message)} given)."]}
        )
    event = event_record(incident=incident, kind=EventKind.COMMENT, actor=actor, message=message)
    _audit(actor, incident, "comment")
    return event


@transaction.atomic
def incident_change_status(*, incident: Incident, status: str, actor, note: str = "") -> Incident:
    if status not in IncidentStatus.values:
        raise ValidationError(
            {
                "status": [
                    f"Unknown status {status!r}; use one of {', '.join(IncidentStatus.values)}."
                ]
            }
        )
    if status == IncidentStatus.RESOLVED:
        return incident_resolve(incident=incident, actor=actor, resolution_notes=note)
    if status == IncidentStatus.CLOSED:
        return incident_close(incident=incident, actor=actor)
    incident = _locked(incident)
    if incident.status == IncidentStatus.RESOLVED:
        return _reopen(incident, actor=actor, status=status, message=note or "Reopened")
    previous = _transition(incident, status)
    incident.save(update_fields=["status", "updated_at"])
    event_record(
        incident=incident,
        kind=EventKind.STATUS_CHANGED,
        actor=actor,
        message=note,
        data={"to": status},
    )
    _audit(actor, incident, "change_status", {"status": [previous, status]})
    return incident


def _transition(incident: Incident, status: str) -> str:
    if not incident.can_become(status):
        raise TransitionNotAllowed(incident, status)
    previous, incident.status = incident.status, status
    return previous


@transaction.atomic
def incident_resolve(
    *, incident: Incident, actor=None, resolution_notes: str = "", evidence: dict | None = None
) -> Incident:
    incident = _locked(incident)
    previous = _transition(incident, IncidentStatus.RESOLVED)
    incident.resolved_at = timezone.now()
    incident.resolved_by = _person(actor)
    if resolution_notes:
        incident.resolution_notes = resolution_notes
    incident.save(
        update_fields=["status", "resolved_at", "resolved_by", "resolution_notes", "updated_at"]
    )
    event_record(
        incident=incident,
        kind=EventKind.RESOLVED,
        actor=actor,
        message=resolution_notes or ("Recovered" if evidence else "Resolved"),
        data={"from": previous, **(evidence or {})},
    )
    _audit(actor, incident, "resolve", {"status": [previous, IncidentStatus.RESOLVED]})
    return incident


@transaction.atomic
def incident_close(*, incident: Incident, actor) -> Incident:
    incident = _locked(incident)
    previous = _transition(incident, IncidentStatus.CLOSED)
    incident.closed_at = timezone.now()
    incident.closed_by = _person(actor)
    incident.save(update_fields=["status", "closed_at", "closed_by", "updated_at"])
    event_record(incident=incident, kind=EventKind.CLOSED, actor=actor, data={"from": previous})
    _audit(actor, incident, "close", {"status": [previous, IncidentStatus.CLOSED]})
    return incident


def _reopen(
    incident: Incident,
    *,
    actor=None,
    status: str = IncidentStatus.INVESTIGATING,
    message: str,
    evidence=None,
):
    """resolved → investigating: the resolution is undone, the count of reopenings kept. The
    partial unique constraint refuses it when the service opened another incident meanwhile."""
    previous = _transition(incident, status)
    incident.resolved_at = None
    incident.resolved_by = None
    incident.reopen_count = F("reopen_count") + 1
    try:
        with transaction.atomic():
            incident.save(
                update_fields=["status", "resolved_at", "resolved_by", "reopen_count", "updated_at"]
            )
    except IntegrityError:
        existing = Incident.objects.filter(
            service_id=incident.service_id, status__in=ACTIVE_STATUSES
        ).first()
        if existing is None:  # another constraint failed: not a race to report
            raise
        raise AlreadyActive(existing) from None
    incident.refresh_from_db(fields=["reopen_count"])
    event_record(
        incident=incident,
        kind=EventKind.REOPENED,
        actor=actor,
        message=message,
        data=evidence or {},
    )
    _audit(actor, incident, "reopen", {"status": [previous, status]})
    return incident


@transaction.atomic
def incident_reopen_for_failure(
    *, incident: Incident, evidence: dict, still_failing: bool = False
) -> Incident:
    """A failure soon after the resolution reopens the incident. `still_failing`: the service
    never recovered (someone resolved it while its checks kept failing), which the timeline
    says as such rather than as a new failure after a recovery."""
    incident = _locked(incident)
    return _reopen(incident, message=reopen_message(incident, still_failing), evidence=evidence)


def reopen_message(incident: Incident, still_failing: bool) -> str:
    if not still_failing:
        return "The service failed again soon after recovering"
    by = f" by {incident.resolved_by.username}" if incident.resolved_by_id else ""
    return f"Reopened: the service was still failing when the incident was resolved{by}"


def _public_update_errors(phase: str, message: str, public_title: str | None) -> dict:
    errors = {}
    limit = PUBLIC_UPDATE_MAX_CHARS
    if not message:
        errors["message"] = ["A public update needs a message."]
    elif len(message) > limit:
        errors["message"] = [
            f"A public update is at most {limit} characters ({len(message)} given)."
        ]
    if phase not in PublicPhase.values:
        errors["phase"] = [f"Unknown phase {phase!r}; use one of {', '.join(PublicPhase.values)}."]
    title_limit = Incident._meta.get_field("public_title").max_length
    if public_title is not None and len(public_title) > title_limit:
        errors["public_title"] = [f"At most {title_limit} characters ({len(public_title)} given)."]
    return errors


@transaction.atomic
def incident_publish(
    *, incident: Incident, actor, phase: str, message: str, public_title: str | None = None
) -> IncidentUpdate:
    """Post an update for the public (the status page and its feed), and optionally give the
    incident its public title (None keeps it; "" goes back to the generic words)."""
    message = (message or "").strip()
    public_title = None if public_title is None else public_title.strip()
    errors = _public_update_errors(phase, message, public_title)
    if errors:
        raise ValidationError(errors)
    incident = _locked(incident)
    changes = {}
    if public_title is not None and public_title != incident.public_title:
        changes["public_title"] = [incident.public_title, public_title]
        incident.public_title = public_title
        incident.save(update_fields=["public_title", "updated_at"])
    update = IncidentUpdate.objects.create(
        incident=incident, phase=phase, message=message, author=_person(actor)
    )
    data = {"phase": phase, "update": update.pk}
    if changes:
        data["public_title"] = public_title
    event_record(
        incident=incident, kind=EventKind.PUBLIC_UPDATE, actor=actor, message=message, data=data
    )
    _audit(actor, incident, "publish", changes or None)
    return update


@transaction.atomic
def incident_update(*, incident: Incident, actor, **fields: Any) -> Incident:
    """Admins edit title, summary, severity, root cause and resolution notes."""
    incident = _locked(incident)
    before = snapshot(incident)
    for name, value in fields.items():
        setattr(incident, name, value)
    incident.full_clean(validate_constraints=False)
    incident.save()
    if "severity" in fields and before["severity"] != incident.severity:
        event_record(
            incident=incident,
            kind=EventKind.SEVERITY_CHANGED,
            actor=actor,
            data={"from": before["severity"], "to": incident.severity},
        )
    if {"root_cause", "resolution_notes"} & fields.keys():
        event_record(incident=incident, kind=EventKind.NOTES_UPDATED, actor=actor)
    audit_update(actor=actor, instance=incident, before=before)
    return incident


@transaction.atomic
def incident_create_manual(
    *, actor, service: Service, title: str, severity: str, summary: str = ""
) -> Incident:
    return incident_open(
        service=service,
        source=IncidentSource.MANUAL,
        impact_started_at=timezone.now(),
        title=title,
        summary=summary,
        severity=severity,
        actor=actor,
    )


def incident_count_failure(*, incident: Incident, count: int = 1) -> None:
    Incident.objects.filter(pk=incident.pk).update(failed_checks=F("failed_checks") + count)


# --- imports ----------------------------------------------------------------------------------


@transaction.atomic
def incident_import(
    *, actor, incident: Incident | None, values: dict[str, Any], events: list[dict[str, Any]]
) -> Incident:
    """Create or update an incident from a file (incidents/importing.py validated it), with
    its times as written, and add the timeline events it is missing. Nothing is notified: an
    imported event is history, not news. Audited like any other write."""
    updated_at = values.get("updated_at")
    fields = {name: value for name, value in values.items() if name != "updated_at"}
    if incident is None:
        incident = Incident(**fields)
        incident.save(force_insert=True)
        if "id" in fields:
            _advance_incident_ids()
        audit_create(actor=actor, instance=incident)
    else:
        incident = _locked(incident)
        before = snapshot(incident)
        for name, value in fields.items():
            setattr(incident, name, value)
        incident.save()
        audit_update(actor=actor, instance=incident, before=before)
    IncidentEvent.objects.bulk_create(IncidentEvent(incident=incident, **event) for event in events)
    moment = updated_at or max(
        (t for t in (incident.detected_at, incident.acknowledged_at, incident.resolved_at,
                     incident.closed_at) if t is not None),
        default=incident.detected_at,
    )  # fmt: skip
    Incident.objects.filter(pk=incident.pk).update(updated_at=moment)
    incident.updated_at = moment
    return incident


def _advance_incident_ids() -> None:
    """An id given explicitly leaves the sequence behind: the next opened incident would take
    an id that is already used."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('incidents_incident', 'id'), "
            "(SELECT max(id) FROM incidents_incident))"
        )
