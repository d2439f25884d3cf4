"""Sending notification deliveries: claim, send, record, back off and retry; the retry sweeper;
the writes of notification channels and their test send.

A delivery is claimed with a guarded update before anything is sent, so a re-delivered task, a
duplicate or a sweeper racing a worker never sends one delivery twice. While a delivery is
`sending`, its next_attempt_at is the claim's lease: a worker killed mid-send leaves the row
behind, and the sweeper counts it as a failed attempt once the lease has run out.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.actions import audit_delete, audit_record
from accounts.audit import MASK, diff, snapshot
from accounts.choices import AuditAction
from incidents import senders
from incidents.choices import NOTIFIABLE_EVENTS, DeliveryStatus, EventKind
from incidents.models import (
    DeliveryAttempt,
    Incident,
    IncidentEvent,
    NotificationChannel,
    NotificationDelivery,
)
from incidents.senders import SendResult
from services.models import Service

__all__ = [
    "backoff_seconds",
    "channel_delete",
    "channel_save",
    "channel_send_test",
    "deliveries_claim_due",
    "deliveries_requeue_due",
    "delivery_attempt",
]

logger = logging.getLogger(__name__)

# Far beyond the deliver task's 90 s hard time limit: a row still `sending` after this has lost
# its worker.
SENDING_LEASE = timedelta(minutes=5)
# A pending delivery is enqueued when it is created; one still pending after this lost its task
# (a broker outage at commit time, a purged queue).
QUEUED_LEASE = timedelta(minutes=5)
SWEEP_BATCH = 500
JITTER = 0.1  # up to +10 %: receivers that failed together are not retried in lockstep
WORKER_LOST = "the worker stopped while sending; no result was recorded"
OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING)


def delivery_attempt(*, delivery_id: int) -> str:
    """Send one delivery if it is due; returns sent, retrying, failed or skipped."""
    if not _claim(delivery_id, timezone.now()):
        return "skipped"
    delivery = NotificationDelivery.objects.select_related(
        "channel", "incident__service", "event"
    ).get(pk=delivery_id)
    return _record(delivery, _send(delivery))


def _claim(delivery_id: int, now: datetime) -> bool:
    # Pending means "queued to go now"; a retrying one waits for its backoff, so an early
    # duplicate task cannot skip it.
    due = Q(status=DeliveryStatus.PENDING) | Q(
        status=DeliveryStatus.RETRYING, next_attempt_at__lte=now
    )
    claimed = NotificationDelivery.objects.filter(due, pk=delivery_id).update(
        status=DeliveryStatus.SENDING,
        attempts=F("attempts") + 1,
        next_attempt_at=now + SENDING_LEASE,
    )
    return claimed == 1


def _send(delivery: NotificationDelivery) -> SendResult:
    if not delivery.channel.enabled and not delivery.is_test:
        return SendResult(ok=False, error="the channel was disabled; not sent")
    try:
        return senders.send(delivery)
    except Exception as exc:
        # A bug in building one message must fail that delivery, not leave it claimed.
        logger.exception("notification delivery %s crashed", delivery.pk)
        return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}")


@transaction.atomic
def _record(delivery: NotificationDelivery, result: SendResult) -> str:
    DeliveryAttempt.objects.create(
        delivery=delivery,
        ok=result.ok,
        response_code=result.response_code,
        error=result.error[:500],
        duration_ms=result.duration_ms,
    )
    if result.ok:
        return _mark_sent(delivery)
    if result.permanent or _is_final(delivery):
        return _mark_failed(delivery, result.error)
    return _mark_retrying(delivery, result.error)


def _is_final(delivery: NotificationDelivery) -> bool:
    # A test is for a person waiting on the answer, and a disabled channel stays quiet.
    return (
        delivery.is_test
        or not delivery.channel.enabled
        or delivery.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS
    )


def _ours(delivery: NotificationDelivery):
    """The row, if this attempt still holds the claim (the sweeper may have taken it back)."""
    return NotificationDelivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.SENDING, attempts=delivery.attempts
    )


def _mark_sent(delivery: NotificationDelivery) -> str:
    now = timezone.now()
    # Success wins even over a reclaimed lease: the message is out, so nothing may resend it.
    updated = NotificationDelivery.objects.filter(pk=delivery.pk, status__in=OPEN_STATUSES).update(
        status=DeliveryStatus.SENT, sent_at=now, next_attempt_at=None, last_error=""
    )
    if updated and delivery.incident_id:
        Incident.objects.filter(pk=delivery.incident_id).update(last_notified_at=now)
        _timeline(
            delivery,
            EventKind.NOTIFICATION_SENT,
            f"{_event_kind(delivery)} notification sent to {delivery.channel.name}",
        )
    return "sent"


def _mark_retrying(delivery: NotificationDelivery, error: str) -> str:
    next_attempt_at = timezone.now() + timedelta(seconds=backoff_seconds(delivery.attempts))
    updated = _ours(delivery).update(
        status=DeliveryStatus.RETRYING, next_attempt_at=next_attempt_at, last_error=error[:500]
    )
    return "retrying" if updated else "skipped"


def _mark_failed(delivery: NotificationDelivery, error: str) -> str:
    updated = _ours(delivery).update(
        status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=error[:500]
    )
    if updated and delivery.incident_id:
        tries = "attempt" if delivery.attempts == 1 else "attempts"
        _timeline(
            delivery,
            EventKind.NOTIFICATION_FAILED,
            f"{_event_kind(delivery)} notification to {delivery.channel.name} failed after "
            f"{delivery.attempts} {tries}: {error}",
            error=error[:500],
        )
    return "failed" if updated else "skipped"


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff after the `attempts`-th failure, capped, with a little jitter."""
    base = settings.NOTIFICATION_BACKOFF_SECONDS
    delay = min(settings.NOTIFICATION_BACKOFF_CAP_SECONDS, base * 2 ** max(attempts - 1, 0))
    return delay + random.uniform(0, delay * JITTER)


def _event_kind(delivery: NotificationDelivery) -> str:
    return delivery.event.kind.capitalize() if delivery.event_id else "Test"


def _timeline(delivery: NotificationDelivery, kind: str, message: str, **extra: str) -> None:
    # Written directly rather than through actions.event_record: these kinds never notify, and
    # the delivery worker is not a person making a change.
    IncidentEvent.objects.create(
        incident_id=delivery.incident_id,
        kind=kind,
        message=message,
        data={
            "channel": delivery.channel_id,
            "channel_name": delivery.channel.name,
            "delivery": delivery.pk,
            "event": delivery.event_id,
            "attempts": delivery.attempts,
            **extra,
        },
    )


# --- the retry sweeper --------------------------------------------------------------------------


def deliveries_requeue_due(*, now: datetime | None = None) -> int:
    """Enqueue the deliveries whose next attempt is due; returns how many were enqueued."""
    ids = deliveries_claim_due(now=now or timezone.now())
    from incidents.tasks import deliver  # tasks imports this module

    for delivery_id in ids:
        deliver.apply_async(args=[delivery_id], queue="notifications")
    return len(ids)


@transaction.atomic
def deliveries_claim_due(*, now: datetime) -> list[int]:
    """Take the due deliveries for enqueueing, skipping rows another sweeper holds.

    Retrying ones whose backoff ran out and pending ones whose task was lost become pending
    with next_attempt_at = now, which no sweeper picks again until QUEUED_LEASE has passed.
    A `sending` one whose lease ran out lost its worker: that counts as a failed attempt.
    """
    rows = list(
        NotificationDelivery.objects.select_for_update(skip_locked=True)
        .filter(_sweepable(now))
        .order_by("next_attempt_at")
        .values_list("pk", "status", "incident_id", "event_id", "notice__key")[:SWEEP_BATCH]
    )
    stale = [pk for pk, status, *_ in rows if status == DeliveryStatus.SENDING]
    held = [row for row in rows if row[1] == DeliveryStatus.SUPPRESSED]
    caught_up, superseded = _catch_up(held)
    due = [
        pk
        for pk, status, *_ in rows
        if status not in (DeliveryStatus.SENDING, DeliveryStatus.SUPPRESSED)
    ] + caught_up
    NotificationDelivery.objects.filter(pk__in=due).update(
        status=DeliveryStatus.PENDING, next_attempt_at=now
    )
    NotificationDelivery.objects.filter(pk__in=superseded).update(next_attempt_at=None)
    for delivery in NotificationDelivery.objects.select_related("channel", "event").filter(
        pk__in=stale
    ):
        logger.warning("notification delivery %s lost its worker while sending", delivery.pk)
        _record(delivery, SendResult(ok=False, error=WORKER_LOST))
    return due


def _catch_up(held: list[tuple]) -> tuple[list[int], list[int]]:
    """Split suppressed deliveries whose rate limit has run out into those to send now (their
    event is still the incident's latest notifiable one) and those a newer event superseded."""
    if not held:
        return [], []
    notices = [row for row in held if row[2] is None]
    held = [row for row in held if row[2] is not None]
    send_notices = _latest_notices(notices)
    latest = dict(
        IncidentEvent.objects.filter(
            incident_id__in={incident for _, _, incident, *_ in held}, kind__in=NOTIFIABLE_EVENTS
        )
        .order_by("incident_id", "-time", "-id")
        .distinct("incident_id")
        .values_list("incident_id", "id")
    )
    send = [pk for pk, _, incident, event, _ in held if latest.get(incident) == event]
    send += send_notices
    return send, [pk for pk, *_ in held + notices if pk not in send]


def _latest_notices(held: list[tuple]) -> list[int]:
    """Held notices (a metric alert's) to send now: each is sent when it is still the latest
    delivery of its key to its channel, so receivers end on the alert's real state."""
    if not held:
        return []
    keys = {key for *_, key in held if key}
    later = NotificationDelivery.objects.filter(
        pk__gte=min(pk for pk, *_ in held), incident__isnull=True, notice__key__in=keys,
        is_test=False,
    ).values_list("pk", "channel_id", "notice__key")  # fmt: skip
    newest: dict[tuple, int] = {}
    for pk, channel_id, key in later:
        newest[(channel_id, key)] = max(pk, newest.get((channel_id, key), 0))
    channel_of = dict(
        NotificationDelivery.objects.filter(pk__in=[pk for pk, *_ in held]).values_list(
            "pk", "channel_id"
        )
    )
    return [pk for pk, *_, key in held if key and newest.get((channel_of[pk], key)) == pk]


def _sweepable(now: datetime) -> Q:
    # Served by the partial index delivery_sweep_idx (pending, retrying, sending, suppressed).
    return (
        Q(status=DeliveryStatus.SUPPRESSED, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.RETRYING, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now - QUEUED_LEASE)
        | Q(status=DeliveryStatus.SENDING, next_attempt_at__lte=now)
    )


# --- testing a channel --------------------------------------------------------------------------


def channel_send_test(*, channel: NotificationChannel, actor) -> NotificationDelivery:
    """Send a test message through `channel` now and return the delivery with its attempt.

    Sent synchronously, once: the person who asked is waiting for the answer.
    """
    with transaction.atomic():
        delivery = NotificationDelivery.objects.create(
            channel=channel,
            is_test=True,
            status=DeliveryStatus.PENDING,
            next_attempt_at=timezone.now(),
        )
        audit_record(actor=actor, action=AuditAction.ACTION, instance=channel, verb="send_test")
    delivery_attempt(delivery_id=delivery.pk)
    return (
        NotificationDelivery.objects.select_related("channel")
        .prefetch_related("attempt_log")
        .get(pk=delivery.pk)
    )


# --- channels -----------------------------------------------------------------------------------


@transaction.atomic
def channel_save(
    *, actor, channel: NotificationChannel, services: list[Service] | None = None
) -> NotificationChannel:
    """Create or update a channel (validated, audited); `services` replaces its routing."""
    creating = channel._state.adding
    stored = (
        None if creating else NotificationChannel.objects.select_for_update().get(pk=channel.pk)
    )
    before = _audit_view(stored) if stored else {}
    channel.full_clean()
    channel.save()
    if services is not None:
        channel.services.set(services)
    changes = diff(before, _audit_view(channel))
    if stored is not None and stored.secret != channel.secret:
        changes["secret"] = [MASK, MASK]  # both sides are masked: say that it changed
    if creating or changes:
        action = AuditAction.CREATE if creating else AuditAction.UPDATE
        audit_record(actor=actor, action=action, instance=channel, changes=changes)
    return channel


def _audit_view(channel: NotificationChannel) -> dict:
    # The routing is part of what an admin changes, though it is not a column of the row.
    services = sorted(channel.services.values_list("pk", flat=True))
    return {**snapshot(channel), "services": services}


@transaction.atomic
def channel_delete(*, actor, channel: NotificationChannel) -> None:
    """Delete a channel with its delivery history (disabling it keeps the history)."""
    audit_delete(actor=actor, instance=channel)
    channel.delete()
