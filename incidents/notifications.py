"""Planning notifications: which channels hear of a timeline event, and rate limiting.

Deliveries are rows created in the transaction that wrote the event and sent by a task on the
`notifications` queue after commit (incidents/delivery.py), never from inside a request.

Rate limit: per incident, one event kind notifies at most once per
INCIDENT_NOTIFY_INTERVAL_SECONDS; repeats inside it (a flapping service resolving and reopening
every minute) are recorded as suppressed deliveries rather than sent. A suppressed delivery is
held, not dropped: when the interval has passed, the retry sweeper sends it if its event is
still the incident's latest notifiable one (so receivers end on the incident's real state, the
final "resolved" of a flapping service included), and lets it go when a newer event superseded it.

Notices that are not about an incident (an SLO ticket alert, a metric alert firing or
resolving) go the same way: one delivery per subscribed channel, sent after commit, retried
with backoff, listed with the others. A notice with a `key` (one metric alert) is rate-limited
like an incident: one of a kind per key per interval, repeats held and the key's latest sent
when the interval ends.
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
    channels: list[NotificationChannel] | None = None,
    key: str = "",
) -> list[NotificationDelivery]:
    """Plan a notice of `kind` (a NoticeKind) for the enabled channels that subscribe to it
    and whose minimum severity `severity` reaches: the `channels` given, or else those routed
    to `service` (default channels included; only those without a service). `key` names what
    the notice is about, for the rate limit. Call it inside the transaction that records what
    happened."""
    if channels is None:
        routed = Q(is_default=True) | Q(services=service.pk) if service else Q(is_default=True)
        channels = list(
            NotificationChannel.objects.filter(enabled=True, events__contains=[kind])
            .filter(routed)
            .distinct()
        )
    rank = SEVERITY_RANK[severity]
    channels = [
        c for c in channels
        if c.enabled and kind in c.events and SEVERITY_RANK[c.min_severity] <= rank
    ]  # fmt: skip
    if not channels:
        return []
    about = {"service": {"id": service.pk, "name": service.name}} if service else {}
    notice = {
        "kind": kind,
        "title": title,
        "message": message,
        "time": (time or timezone.now()).isoformat(),
        "facts": {**about, **(facts or {})},
    }
    if key:
        notice["key"] = key
    now = timezone.now()
    held = bool(key) and notice_recently_sent(key=key, kind=kind)
    window = timedelta(seconds=settings.INCIDENT_NOTIFY_INTERVAL_SECONDS)
    deliveries = NotificationDelivery.objects.bulk_create(
        [
            NotificationDelivery(
                channel=channel,
                notice=notice,
                status=DeliveryStatus.SUPPRESSED if held else DeliveryStatus.PENDING,
                next_attempt_at=now + window if held else now,
            )
            for channel in channels
        ]
    )
    if not held:
        ids = [d.pk for d in deliveries]
        transaction.on_commit(lambda: _enqueue(ids), robust=True)
    return deliveries


def notice_recently_sent(*, key: str, kind: str) -> bool:
    since = timezone.now() - timedelta(seconds=settings.INCIDENT_NOTIFY_INTERVAL_SECONDS)
    return (
        NotificationDelivery.objects.filter(
            Q(created_at__gte=since) | Q(sent_at__gte=since),
            incident__isnull=True,
            notice__key=key,
            notice__kind=kind,
            is_test=False,
        )
        .exclude(status=DeliveryStatus.SUPPRESSED)
        .exists()
    )


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
