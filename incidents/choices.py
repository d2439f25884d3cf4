"""Enumerations of the incidents app."""

from django.db import models

from services.choices import Severity

__all__ = [
    "ACTIVE_STATUSES",
    "SEVERITY_RANK",
    "TRANSITIONS",
    "EventKind",
    "IncidentSource",
    "IncidentStatus",
    "Severity",
]


class IncidentStatus(models.TextChoices):
    NEW = "new", "New"
    INVESTIGATING = "investigating", "Investigating"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


ACTIVE_STATUSES = (IncidentStatus.NEW, IncidentStatus.INVESTIGATING, IncidentStatus.IN_PROGRESS)

# Which status may follow which; acknowledging is not a status change.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    IncidentStatus.NEW: (
        IncidentStatus.INVESTIGATING,
        IncidentStatus.IN_PROGRESS,
        IncidentStatus.RESOLVED,
    ),
    IncidentStatus.INVESTIGATING: (IncidentStatus.IN_PROGRESS, IncidentStatus.RESOLVED),
    IncidentStatus.IN_PROGRESS: (IncidentStatus.INVESTIGATING, IncidentStatus.RESOLVED),
    IncidentStatus.RESOLVED: (IncidentStatus.CLOSED, IncidentStatus.INVESTIGATING),
    IncidentStatus.CLOSED: (),
}

SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class IncidentSource(models.TextChoices):
    CHECK = "check", "Failing checks"
    SLO = "slo", "SLO burn rate"
    ALERT_RULE = "alert_rule", "Alert rule"
    MANUAL = "manual", "Manual"


class EventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    STATUS_CHANGED = "status_changed", "Status changed"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ASSIGNED = "assigned", "Assigned"
    COMMENT = "comment", "Comment"
    CHECK_FAILED = "check_failed", "Check failed"
    CHECK_RECOVERED = "check_recovered", "Check recovered"
    NOTIFICATION_SENT = "notification_sent", "Notification sent"
    NOTIFICATION_FAILED = "notification_failed", "Notification failed"
    REOPENED = "reopened", "Reopened"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"
    SEVERITY_CHANGED = "severity_changed", "Severity changed"
    NOTES_UPDATED = "notes_updated", "Notes updated"
    PUBLIC_UPDATE = "public_update", "Public update"


class PublicPhase(models.TextChoices):
    """Where an incident stands, as the public reads it (the words status pages use)."""

    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook (JSON, HMAC-signed)"
    SLACK = "slack", "Slack-compatible webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed (rate limit)"


class NoticeKind(models.TextChoices):
    """What channels hear about that is not an incident's timeline event."""

    SLO_TICKET = "slo_ticket", "SLO ticket alert"
    ALERT_FIRING = "alert_firing", "Metric alert firing"
    ALERT_RESOLVED = "alert_resolved", "Metric alert resolved"


# Timeline events that can notify.
NOTIFIABLE_EVENTS = (
    EventKind.OPENED,
    EventKind.ACKNOWLEDGED,
    EventKind.RESOLVED,
    EventKind.REOPENED,
)
# What a channel can subscribe to (its `events`): those events and the notices.
CHANNEL_EVENTS = (
    *NOTIFIABLE_EVENTS,
    NoticeKind.SLO_TICKET,
    NoticeKind.ALERT_FIRING,
    NoticeKind.ALERT_RESOLVED,
)
