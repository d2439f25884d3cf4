"""What went wrong and what was done about it: incidents, their timeline, notifications."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Value
from django.db.models.functions import Now

from incidents.choices import (
    ACTIVE_STATUSES,
    CHANNEL_EVENTS,
    TRANSITIONS,
    ChannelKind,
    DeliveryStatus,
    EventKind,
    IncidentSource,
    IncidentStatus,
    NoticeKind,
    PublicPhase,
    Severity,
)
from noc.limits import NOTES_MAX_CHARS, PUBLIC_UPDATE_MAX_CHARS, bounded_text
from services.models import Service

USER = settings.AUTH_USER_MODEL


class Incident(models.Model):
    """One incident of one service.

    Times, explicitly: `impact_started_at` is the first failing check (it may precede opening),
    `detected_at` when the incident opened, then acknowledged, resolved and closed. MTTA is
    acknowledged − detected; MTTR is resolved − impact started, so neither an automatic resolve
    nor a late opening flatters them (see incidents/queries.py)."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="incidents")
    title = models.CharField(max_length=200)
    summary = bounded_text(NOTES_MAX_CHARS, blank=True)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    status = models.CharField(
        max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.NEW
    )
    source = models.CharField(max_length=16, choices=IncidentSource.choices)
    dedup_key = models.CharField(max_length=200, blank=True)
    assignee = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    impact_started_at = models.DateTimeField()
    detected_at = models.DateTimeField(db_default=Now())
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    public_title = models.CharField(
        max_length=200,
        blank=True,
        help_text="What the public status page calls it. Blank: generic words naming the "
        "service; the title itself is never public.",
    )
    root_cause = bounded_text(NOTES_MAX_CHARS, blank=True)
    resolution_notes = bounded_text(NOTES_MAX_CHARS, blank=True)
    failed_checks = models.PositiveIntegerField(default=0)
    reopen_count = models.PositiveIntegerField(default=0)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            # At most one active incident per service; concurrent openers race into this.
            models.UniqueConstraint(
                fields=["service"],
                condition=models.Q(status__in=ACTIVE_STATUSES),
                name="incident_one_active_per_service",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=IncidentStatus.values), name="incident_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(severity__in=Severity.values), name="incident_severity_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-detected_at"], name="incident_status_idx"),
            models.Index(fields=["service", "-detected_at"], name="incident_service_idx"),
            models.Index(fields=["-detected_at"], name="incident_detected_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def allowed_next(self) -> tuple[str, ...]:
        return TRANSITIONS[self.status]

    def can_become(self, status: str) -> bool:
        return status in TRANSITIONS.get(self.status, ())

    def resolved_within(self, window: timedelta, moment) -> bool:
        """Flapping: a failure this soon after resolution reopens instead of opening anew."""
        return (
            self.status == IncidentStatus.RESOLVED
            and self.resolved_at is not None
            and moment - self.resolved_at <= window
        )


class IncidentEvent(models.Model):
    """The timeline: every change to an incident writes one, in the same transaction."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    actor = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = bounded_text(NOTES_MAX_CHARS, blank=True)
    data = models.JSONField(default=dict, blank=True)
    time = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["time", "id"]
        indexes = [models.Index(fields=["incident", "time"], name="incidentevent_timeline_idx")]

    def __str__(self) -> str:
        return f"{self.kind} on #{self.incident_id}"

    @property
    def actor_label(self) -> str:
        return self.actor.username if self.actor_id else "system"


class IncidentUpdate(models.Model):
    """An update written for the public (the status page and its feed show it): where the
    incident stands and what people should know, in words meant for them."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="public_updates")
    phase = models.CharField(max_length=16, choices=PublicPhase.choices)
    message = bounded_text(PUBLIC_UPDATE_MAX_CHARS)
    author = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    time = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["incident", "-time"], name="incidentupdate_recent_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(phase__in=PublicPhase.values), name="incidentupdate_phase_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.phase} on #{self.incident_id}"


def default_events() -> list[str]:
    return list(CHANNEL_EVENTS)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class NotificationChannel(models.Model):
    """Where incident notifications go. Default channels receive every service's incidents;
    others only those of the services routed to them."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=ChannelKind.choices)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    services = models.ManyToManyField(Service, blank=True, related_name="notification_channels")
    events = ArrayField(
        models.CharField(max_length=24, choices=EventKind.choices + NoticeKind.choices),
        default=default_events,
    )
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.LOW)
    # email
    email_to = ArrayField(models.EmailField(), default=list, blank=True)
    # webhook / slack
    url = models.URLField(max_length=2000, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    secret = models.CharField(
        max_length=100, default=new_secret, blank=True, help_text="HMAC-SHA256 key"
    )
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from incidents.validation import validate_channel

        validate_channel(self)


class NotificationDelivery(models.Model):
    """One event to one channel. Unique per (channel, event): a delivery is never created, and
    so never sent, twice for one event."""

    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="deliveries"
    )
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(
        IncidentEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    is_test = models.BooleanField(default=False)
    # A delivery without an incident that is not a test carries what it says here: the
    # NoticeKind, a title, the message, the time, and the facts a webhook receiver gets.
    # db_default too: processes still running the previous release insert without it.
    notice = models.JSONField(default=dict, db_default=Value({}, models.JSONField()), blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "event"],
                condition=models.Q(event__isnull=False),
                name="delivery_once_per_event",
            )
        ]
        indexes = [
            # The retry sweeper: deliveries waiting for their next attempt (or, suppressed, for
            # the end of the rate limit).
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_sweep_idx",
                condition=models.Q(status__in=["pending", "retrying", "sending", "suppressed"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} ← event {self.event_id} ({self.status})"

    @property
    def kind(self) -> str:
        """What it is about: the timeline event's kind, the notice's kind, or `test`."""
        if self.event_id:
            return self.event.kind
        return self.notice.get("kind", "notice") if self.notice else "test"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(
        NotificationDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    time = models.DateTimeField(db_default=Now())
    ok = models.BooleanField()
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["time", "id"]

    def __str__(self) -> str:
        return f"attempt on delivery {self.delivery_id}: {'ok' if self.ok else 'failed'}"
