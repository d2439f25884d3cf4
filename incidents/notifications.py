"""Planning notifications: which channels hear of a timeline event, and rate limiting.

Deliveries are rows created in the transaction that wrote the event and sent by a task on the
`notifications` queue after commit (incidents/delivery.py), never from inside a request.

Rate limit: per incident, one event kind notifies at most once per
INCIDENT_NOTIFY_INTERVAL_SECONDS; repeats inside it (a flapping service resolving and reopening
every minute) are recorded as suppressed deliveries rather than sent. A suppressed delivery is
held, not dropped: when the interval has passed, the retry sweeper sends it if its event is
still the incident's latest notifiable one (so receivers end on the incident's real state, the
final "resolved" of a flapping service included), and lets it go when a newer event superseded it.

Notices that are not about an incident (an SLO ticket alert) go the same way: one delivery
per subscribed channel, sent after commit, retried with backoff, listed with the others.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from incidents.choices import SEVERITY_RANK, DeliveryStatus
from incidents.models import IncidentEvent, NotificationChannel, NotificationDelivery


def channels_for(event: IncidentEvent) -> list[NotificationChannel]:
    incident = event.incident
    candidates = NotificationChannel.objects.filter(
        enabled=True, events__contains=[event.kind]
    ).filter(Q(is_default=True) | Q(services=incident.service_id))
    rank = SEVERITY_RANK[incident.severity]
    return [c for c in candidates.distinct() if SEVERITY_RANK[c.min_severity] <= rank]


def notice_plan(
    *,
    kind: str,
    service,
    severity: str,
    title: str,
    message: str,
    facts: dict[str, Any] | None = None,
    time: datetime | None = None,
) -> list[NotificationDelivery]:
    """Plan a notice of `kind` (a NoticeKind) about `service` for the enabled channels that
    subscribe to it, are routed to the service (default channels included) and whose minimum
    severity `severity` reaches. Call it inside the transaction that records what happened."""
    candidates = (
        NotificationChannel.objects.filter(enabled=True, events__contains=[kind])
        .filter(Q(is_default=True) | Q(services=service.pk))
        .distinct()
    )
    rank = SEVERITY_RANK[severity]
    channels = [c for c in candidates if SEVERITY_RANK[c.min_severity] <= rank]
    if not channels:
        return []
    notice = {
        "kind": kind,
        "title": title,
        "message": message,
        "time": (time or timezone.now()).isoformat(),
        "facts": {"service": {"id": service.pk, "name": service.name}, **(facts or {})},
    }
    deliveries = NotificationDelivery.objects.bulk_create(
        [
            NotificationDelivery(
                channel=channel,
                notice=notice,
                status=DeliveryStatus.PENDING,
                next_attempt_at=timezone.now(),
            )
            for channel in channels
        ]
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: _enqueue(ids), robust=True)
    return deliveries


def recently_notified(event: IncidentEvent) -> bool:
    # Planned within the interval, or sent within it (a held one sent when its interval ended).
    since = timezone.now() - timedelta(seconds=settings.INCIDENT_NOTIFY_INTERVAL_SECONDS)
    return (
        NotificationDelivery.objects.filter(
            Q(created_at__gte=since) | Q(sent_at__gte=since),
            incident_id=event.incident_id,
            event__kind=event.kind,
            is_test=False,
        )
        .exclude(status=DeliveryStatus.SUPPRESSED)
        .exists()
    )


def deliveries_plan(*, event: IncidentEvent) -> list[NotificationDelivery]:
    channels = channels_for(event)
    if not channels:
        return []
    suppressed = recently_notified(event)
    status = DeliveryStatus.SUPPRESSED if suppressed else DeliveryStatus.PENDING
    now = timezone.now()
    # A suppressed delivery's next_attempt_at is when the rate limit would let it go.
    window = timedelta(seconds=settings.INCIDENT_NOTIFY_INTERVAL_SECONDS)
    deliveries = NotificationDelivery.objects.bulk_create(
        [
            NotificationDelivery(
                channel=channel,
                incident_id=event.incident_id,
                event=event,
                status=status,
                next_attempt_at=now + window if suppressed else now,
            )
            for channel in channels
        ]
    )
    if not suppressed:
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: _enqueue(ids), robust=True)
    return deliveries


def _enqueue(ids: list[int]) -> None:
    # Runs after commit with robust=True: a broker outage is logged, not raised into the
    # request or the check batch that already committed; the retry sweeper enqueues these
    # deliveries again once QUEUED_LEASE has passed.
    from incidents.tasks import deliver

    for delivery_id in ids:
        deliver.apply_async(args=[delivery_id], queue="notifications")
