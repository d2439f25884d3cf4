"""Notifications end to end: planning, sending to real local receivers, retries with backoff,
giving up, the request-forgery guard, rate limiting, routing, the sweeper and test sends."""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from incidents import actions, delivery, notifications
from incidents.choices import IncidentSource, NoticeKind
from incidents.models import (
    Incident,
    IncidentEvent,
    NotificationChannel,
    NotificationDelivery,
)
from incidents.tasks import deliver

pytestmark = pytest.mark.django_db


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _notification_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.NOTIFICATION_MAX_ATTEMPTS = 6
    settings.NOTIFICATION_BACKOFF_SECONDS = 30
    settings.NOTIFICATION_BACKOFF_CAP_SECONDS = 3600
    settings.NOTIFICATION_ALLOW_PRIVATE = True
    settings.INCIDENT_NOTIFY_INTERVAL_SECONDS = 300


def make_channel(*, services=None, **fields) -> NotificationChannel:
    fields.setdefault("name", f"channel-{NotificationChannel.objects.count() + 1}")
    fields.setdefault("is_default", services is None)
    return delivery.channel_save(
        actor=None, channel=NotificationChannel(**fields), services=services
    )


def open_incident(service, severity: str = "critical", title: str = "API is down") -> Incident:
    return actions.incident_open(
        service=service,
        source=IncidentSource.MANUAL,
        impact_started_at=timezone.now(),
        title=title,
        severity=severity,
    )


def delivery_for(channel: NotificationChannel, kind: str = "opened") -> NotificationDelivery:
    return NotificationDelivery.objects.get(channel=channel, event__kind=kind)


def make_due(row: NotificationDelivery) -> None:
    NotificationDelivery.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def timeline(incident: Incident) -> list[str]:
    return list(incident.events.values_list("kind", flat=True))


def reopen(incident: Incident) -> Incident:
    actions.incident_resolve(incident=incident)
    return actions.incident_change_status(incident=incident, status="investigating", actor=None)


# --- webhook, Slack, email ----------------------------------------------------------------------


def test_a_webhook_gets_the_incident_signed_with_the_channel_secret(make_service, receiver):
    channel = make_channel(
        kind="webhook", url=receiver.url, headers={"Authorization": "Bearer t0ken"}
    )
    incident = open_incident(make_service(name="Payments API"))
    row = delivery_for(channel)

    assert delivery.delivery_attempt(delivery_id=row.pk) == "sent"

    [request] = receiver.requests
    expected = hmac.new(channel.secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-NOC-Signature"] == f"sha256={expected}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "NOC-Notifier/0.1"
    assert request.headers["X-NOC-Event"] == "opened"
    assert request.headers["X-NOC-Delivery"] == str(row.pk)
    assert request.headers["Authorization"] == "Bearer t0ken"
    body = request.json()
    assert body["event"] == "opened"
    assert body["message"] == "API is down"
    assert body["incident"]["id"] == incident.pk
    assert body["incident"]["title"] == "API is down"
    assert body["incident"]["status"] == "new"
    assert body["incident"]["severity"] == "critical"
    assert body["incident"]["service"] == {"id": incident.service_id, "name": "Payments API"}
    assert body["incident"]["detected_at"].endswith("Z")
    assert body["incident"]["acknowledged_at"] is None
    assert body["incident"]["url"].endswith(f"/admin/incidents/incident/{incident.pk}/change/")
    assert body["time"]


def test_a_sent_delivery_is_recorded_on_the_delivery_and_the_timeline(make_service, receiver):
    channel = make_channel(kind="webhook", url=receiver.url)
    incident = open_incident(make_service())
    row = delivery_for(channel)

    delivery.delivery_attempt(delivery_id=row.pk)

    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None
    [attempt] = row.attempt_log.all()
    assert attempt.ok and attempt.response_code == 200 and attempt.duration_ms > 0
    sent = incident.events.get(kind="notification_sent")
    assert sent.data["channel"] == channel.pk and sent.data["delivery"] == row.pk
    incident.refresh_from_db()
    assert incident.last_notified_at == row.sent_at
    # The timeline event it wrote is not itself notified.
    assert NotificationDelivery.objects.filter(event=sent).count() == 0
    assert NotificationDelivery.objects.count() == 1


def test_a_slack_channel_gets_text_and_a_colored_attachment(make_service, receiver):
    channel = make_channel(kind="slack", url=receiver.url)
    open_incident(make_service(name="Checkout"), severity="critical", title="Checkout errors")

    delivery.delivery_attempt(delivery_id=delivery_for(channel).pk)

    [request] = receiver.requests
    body = request.json()
    assert body["text"] == "[NOC] CRITICAL: Checkout errors (opened)"
    [attachment] = body["attachments"]
    assert attachment["color"] == "#cf222e"
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["Severity"] == "critical" and fields["Status"] == "new"
    assert fields["Service"].startswith("Checkout")
    assert "X-NOC-Signature" not in request.headers


def test_an_email_channel_sends_a_plain_text_mail(make_service):
    channel = make_channel(kind="email", email_to=["oncall@example.test", "lead@example.test"])
    incident = open_incident(make_service(name="DNS"), severity="high", title="DNS timeouts")

    assert delivery.delivery_attempt(delivery_id=delivery_for(channel).pk) == "sent"

    [message] = mail.outbox
    assert message.subject == "[NOC] HIGH: DNS timeouts (opened)"
    assert message.to == ["oncall@example.test", "lead@example.test"]
    assert "Service:      DNS" in message.body
    assert "Severity:     high" in message.body
    assert f"/admin/incidents/incident/{incident.pk}/change/" in message.body


def test_an_unreachable_mail_server_is_a_failure_to_retry(make_service, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # discard: nothing listens
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2
    channel = make_channel(kind="email", email_to=["oncall@example.test"])
    open_incident(make_service())
    row = delivery_for(channel)

    assert delivery.delivery_attempt(delivery_id=row.pk) == "retrying"

    row.refresh_from_db()
    assert row.last_error.startswith("email not sent:")
    assert "refused" in row.last_error.lower()


# --- retries, giving up, duplicates -------------------------------------------------------------


def test_a_failing_receiver_is_retried_with_growing_backoff_until_it_answers(
    make_service, receiver
):
    receiver.fail(2)
    channel = make_channel(kind="webhook", url=receiver.url)
    open_incident(make_service())
    row = delivery_for(channel)
    waits = []
    for _ in range(2):
        before = timezone.now()
        assert delivery.delivery_attempt(delivery_id=row.pk) == "retrying"
        row.refresh_from_db()
        assert row.status == "retrying"
        assert row.last_error == "HTTP 500 from receiver: receiver exploded"
        waits.append((row.next_attempt_at - before).total_seconds())
        # Not due yet: a task arriving early (a duplicate, a re-delivery) does not send.
        assert delivery.delivery_attempt(delivery_id=row.pk) == "skipped"
        make_due(row)

    assert 30 <= waits[0] <= 34 and 60 <= waits[1] <= 67
    assert delivery.delivery_attempt(delivery_id=row.pk) == "sent"
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 3 and row.last_error == ""
    assert [a.response_code for a in row.attempt_log.all()] == [500, 500, 200]
    assert len(receiver.requests) == 3
    # Every attempt carries the same delivery id, so the receiver can drop duplicates.
    assert {r.headers["X-NOC-Delivery"] for r in receiver.requests} == {str(row.pk)}


def test_the_last_allowed_failure_fails_the_delivery_on_the_timeline(
    make_service, receiver, settings
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    receiver.fail(5, status=503)
    channel = make_channel(kind="webhook", url=receiver.url)
    incident = open_incident(make_service())
    row = delivery_for(channel)

    assert delivery.delivery_attempt(delivery_id=row.pk) == "retrying"
    make_due(row)
    assert delivery.delivery_attempt(delivery_id=row.pk) == "failed"

    row.refresh_from_db()
    assert row.status == "failed" and row.attempts == 2 and row.next_attempt_at is None
    failed = incident.events.get(kind="notification_failed")
    assert failed.data["delivery"] == row.pk and failed.data["attempts"] == 2
    assert "failed after 2 attempts: HTTP 503 from receiver" in failed.message
    assert "notification_sent" not in timeline(incident)
    # Given up: neither a late task nor the sweeper sends it again.
    assert delivery.delivery_attempt(delivery_id=row.pk) == "skipped"
    assert delivery.deliveries_claim_due(now=timezone.now() + timedelta(days=1)) == []
    assert len(receiver.requests) == 2


def test_delivering_a_sent_delivery_again_sends_nothing(make_service, receiver):
    channel = make_channel(kind="webhook", url=receiver.url)
    open_incident(make_service())
    row = delivery_for(channel)

    assert deliver(row.pk) == "sent"  # the Celery task's body, run in-process
    assert deliver(row.pk) == "skipped"
    assert delivery.delivery_attempt(delivery_id=row.pk) == "skipped"

    assert len(receiver.requests) == 1
    row.refresh_from_db()
    assert row.attempts == 1


def test_an_unknown_delivery_is_skipped():
    assert delivery.delivery_attempt(delivery_id=987654) == "skipped"


def test_a_channel_disabled_after_planning_does_not_send(make_service, receiver):
    channel = make_channel(kind="webhook", url=receiver.url)
    open_incident(make_service())
    NotificationChannel.objects.filter(pk=channel.pk).update(enabled=False)

    assert delivery.delivery_attempt(delivery_id=delivery_for(channel).pk) == "failed"

    assert receiver.requests == []
    assert delivery_for(channel).last_error == "the channel was disabled; not sent"


def test_the_backoff_doubles_up_to_the_cap_with_a_little_jitter(settings):
    settings.NOTIFICATION_BACKOFF_SECONDS = 10
    settings.NOTIFICATION_BACKOFF_CAP_SECONDS = 60
    for attempts, delay in [(1, 10), (2, 20), (3, 40), (4, 60), (30, 60)]:
        wait = delivery.backoff_seconds(attempts)
        assert delay <= wait <= delay * 1.1


# --- the request-forgery guard ------------------------------------------------------------------


def test_a_metadata_url_is_refused_when_the_channel_is_saved():
    channel = NotificationChannel(
        name="metadata", kind="webhook", url="http://169.254.169.254/latest/meta-data/"
    )
    with pytest.raises(ValidationError) as refused:
        channel.full_clean()
    assert refused.value.message_dict["url"] == [
        "This URL cannot receive notifications: "
        "address 169.254.169.254 is refused (cloud metadata)."
    ]


def test_a_refused_address_fails_the_delivery_at_send_time_without_retrying(make_service):
    # A row written before the rule (or by hand): the sender checks again.
    channel = NotificationChannel.objects.create(
        name="old", kind="webhook", url="http://169.254.169.254/hook", is_default=True
    )
    incident = open_incident(make_service())
    row = delivery_for(channel)

    assert delivery.delivery_attempt(delivery_id=row.pk) == "failed"

    row.refresh_from_db()
    assert row.last_error == "address 169.254.169.254 is refused (cloud metadata)"
    assert row.attempts == 1
    assert incident.events.filter(kind="notification_failed").exists()


def test_a_hostname_resolving_to_a_refused_address_is_refused_at_send_time(
    make_service, receiver, settings
):
    settings.NOTIFICATION_ALLOW_PRIVATE = False
    port = receiver.url.split(":")[2].split("/")[0]
    # Hostnames are not resolved at save time (they may move); the send resolves and checks.
    channel = make_channel(kind="webhook", url=f"http://localhost:{port}/hook")
    open_incident(make_service())
    row = delivery_for(channel)

    assert delivery.delivery_attempt(delivery_id=row.pk) == "failed"

    row.refresh_from_db()
    assert "localhost resolves to refused address" in row.last_error
    assert "(loopback)" in row.last_error
    assert receiver.requests == []


def test_a_closed_port_is_a_connection_refused_failure(make_service):
    channel = make_channel(kind="webhook", url="http://127.0.0.1:9/hook")
    open_incident(make_service())
    row = delivery_for(channel)

    assert delivery.delivery_attempt(delivery_id=row.pk) == "retrying"
    row.refresh_from_db()
    assert row.last_error == "connection refused"
    assert row.attempt_log.get().response_code is None


# --- planning: rate limit and routing -----------------------------------------------------------


def test_a_second_reopening_within_the_interval_is_suppressed(make_service, receiver):
    channel = make_channel(kind="webhook", url=receiver.url, events=["reopened"])
    incident = open_incident(make_service())

    reopen(incident)
    reopen(incident)

    first, second = NotificationDelivery.objects.filter(channel=channel).order_by("id")
    assert first.status == "pending"
    assert second.status == "suppressed"
    # Held until the interval has passed (then the sweeper decides: see below).
    wait = (second.next_attempt_at - second.created_at).total_seconds()
    assert 299 <= wait <= 301
    assert delivery.delivery_attempt(delivery_id=second.pk) == "skipped"
    assert delivery.delivery_attempt(delivery_id=first.pk) == "sent"
    assert len(receiver.requests) == 1


def test_channels_hear_what_they_are_routed_severity_and_events(make_service, receiver):
    api, db = make_service(name="API"), make_service(name="DB")
    everything = make_channel(kind="webhook", url=receiver.url)
    api_only = make_channel(kind="webhook", url=receiver.url, services=[api])
    critical_only = make_channel(kind="webhook", url=receiver.url, min_severity="critical")
    resolutions = make_channel(kind="webhook", url=receiver.url, events=["resolved"])
    disabled = make_channel(kind="webhook", url=receiver.url, enabled=False)

    high_on_api = open_incident(api, severity="high")
    critical_on_db = open_incident(db, severity="critical")
    actions.incident_resolve(incident=high_on_api)

    def heard(incident: Incident) -> set[tuple[str, str]]:
        rows = NotificationDelivery.objects.filter(incident=incident)
        return {(r.channel.name, r.event.kind) for r in rows.select_related("channel", "event")}

    assert heard(high_on_api) == {
        (everything.name, "opened"), (everything.name, "resolved"),
        (api_only.name, "opened"), (api_only.name, "resolved"),
        (resolutions.name, "resolved"),
    }  # fmt: skip
    assert heard(critical_on_db) == {(everything.name, "opened"), (critical_only.name, "opened")}
    assert not NotificationDelivery.objects.filter(channel=disabled).exists()


# --- notices without an incident (SLO ticket alerts) --------------------------------------------


def plan_notice(service, **fields) -> list[NotificationDelivery]:
    fields = {
        "kind": NoticeKind.SLO_TICKET, "service": service, "severity": "medium",
        "title": "SLO ticket: API availability", "message": "burn rate 4.2 over 1d and 3.9 over 2h",
        "facts": {"slo": {"id": "api-availability"}}, **fields,
    }  # fmt: skip
    return notifications.notice_plan(**fields)


def test_a_notice_goes_to_the_subscribed_channels_that_reach_its_severity(make_service, receiver):
    api, db = make_service(name="API"), make_service(name="DB")
    everything = make_channel(kind="webhook", url=receiver.url)
    api_only = make_channel(kind="webhook", url=receiver.url, services=[api])
    make_channel(kind="webhook", url=receiver.url, services=[db])
    make_channel(kind="webhook", url=receiver.url, min_severity="high")  # a pager
    make_channel(kind="webhook", url=receiver.url, events=["opened", "resolved"])
    make_channel(kind="webhook", url=receiver.url, enabled=False)

    rows = plan_notice(api)

    assert {row.channel.name for row in rows} == {everything.name, api_only.name}
    assert {row.kind for row in rows} == {"slo_ticket"}
    assert all(row.incident_id is None and row.status == "pending" for row in rows)


def test_a_new_channel_subscribes_to_notices_by_default():
    assert NoticeKind.SLO_TICKET in make_channel(kind="webhook", url="https://example.test/").events


def test_a_notice_webhook_carries_title_message_and_facts_signed(make_service, receiver):
    channel = make_channel(kind="webhook", url=receiver.url)
    fired = timezone.now() - timedelta(seconds=5)
    [row] = plan_notice(make_service(id="api", name="API"), time=fired)

    assert delivery.delivery_attempt(delivery_id=row.pk) == "sent"

    [request] = receiver.requests
    assert request.json() == {
        "event": "slo_ticket",
        "incident": None,
        "title": "SLO ticket: API availability",
        "message": "burn rate 4.2 over 1d and 3.9 over 2h",
        "time": fired.isoformat().replace("+00:00", "Z"),
        "service": {"id": "api", "name": "API"},
        "slo": {"id": "api-availability"},
    }
    assert request.headers["X-NOC-Event"] == "slo_ticket"
    expected = hmac.new(channel.secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-NOC-Signature"] == f"sha256={expected}"
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)


def test_a_notice_reads_well_in_slack_and_email(make_service, receiver):
    slack = make_channel(kind="slack", url=receiver.url)
    email = make_channel(kind="email", email_to=["oncall@example.test"])
    rows = {row.channel_id: row for row in plan_notice(make_service())}

    delivery.delivery_attempt(delivery_id=rows[slack.pk].pk)
    delivery.delivery_attempt(delivery_id=rows[email.pk].pk)

    [request] = receiver.requests
    assert request.json() == {
        "text": "[NOC] SLO ticket: API availability: burn rate 4.2 over 1d and 3.9 over 2h"
    }
    [message] = mail.outbox
    assert message.subject == "[NOC] SLO ticket: API availability"
    assert "burn rate 4.2 over 1d and 3.9 over 2h" in message.body


def test_a_failing_notice_is_retried_like_an_incident_notification(make_service, receiver):
    receiver.fail(1)
    make_channel(kind="webhook", url=receiver.url)
    [row] = plan_notice(make_service())

    assert delivery.delivery_attempt(delivery_id=row.pk) == "retrying"
    make_due(row)
    assert delivery.delivery_attempt(delivery_id=row.pk) == "sent"

    row.refresh_from_db()
    assert [a.response_code for a in row.attempt_log.all()] == [500, 200]
    assert not IncidentEvent.objects.exists()  # no timeline to write to


def test_a_notice_planned_in_a_rolled_back_transaction_is_not_sent(make_service, receiver):
    make_channel(kind="webhook", url=receiver.url)
    service = make_service()
    with pytest.raises(RuntimeError), transaction.atomic():
        plan_notice(service)
        raise RuntimeError("the alert was not recorded")
    assert not NotificationDelivery.objects.exists()


# --- the sweeper --------------------------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Delivery ids the sweeper hands to Celery (captured instead of sent to the broker)."""
    ids: list[int] = []

    def apply_async(args=None, kwargs=None, queue=None, **options):
        assert queue == "notifications"
        ids.extend(args)

    monkeypatch.setattr(deliver, "apply_async", apply_async)
    return ids


def test_the_sweeper_enqueues_due_retries_once(make_service, receiver, enqueued):
    receiver.fail(1)
    channel = make_channel(kind="webhook", url=receiver.url)
    open_incident(make_service())
    row = delivery_for(channel)
    delivery.delivery_attempt(delivery_id=row.pk)

    assert delivery.deliveries_requeue_due() == 0  # backoff not over
    make_due(row)
    assert delivery.deliveries_requeue_due() == 1
    assert delivery.deliveries_requeue_due() == 0  # a second sweep does not enqueue it again

    assert enqueued == [row.pk]
    row.refresh_from_db()
    assert row.status == "pending"
    assert deliver(row.pk) == "sent"


def test_a_pending_delivery_whose_task_was_lost_is_enqueued_again(make_service, enqueued):
    channel = make_channel(kind="email", email_to=["oncall@example.test"])
    open_incident(make_service())
    row = delivery_for(channel)

    assert delivery.deliveries_requeue_due() == 0  # its own task is on the way
    later = timezone.now() + delivery.QUEUED_LEASE + timedelta(seconds=1)
    assert delivery.deliveries_requeue_due(now=later) == 1
    assert enqueued == [row.pk]


def test_a_flapping_incident_ends_on_its_real_state_once_the_interval_has_passed(
    make_service, receiver, enqueued
):
    channel = make_channel(kind="webhook", url=receiver.url, events=["reopened", "resolved"])
    incident = open_incident(make_service())
    reopen(incident)  # resolved, reopened: both sent
    reopen(incident)  # resolved, reopened again: both suppressed
    actions.incident_resolve(incident=incident)  # resolved: suppressed, and the real state
    rows = list(NotificationDelivery.objects.filter(channel=channel).order_by("id"))
    assert [r.status for r in rows] == ["pending"] * 2 + ["suppressed"] * 3
    for row in rows[:2]:
        delivery.delivery_attempt(delivery_id=row.pk)

    # Within the interval nothing more goes out.
    assert delivery.deliveries_requeue_due() == 0
    later = timezone.now() + timedelta(seconds=301)
    assert delivery.deliveries_requeue_due(now=later) == 1

    last = rows[-1]
    assert enqueued == [last.pk]
    assert delivery.delivery_attempt(delivery_id=last.pk) == "sent"
    assert [r.json()["event"] for r in receiver.requests] == ["resolved", "reopened", "resolved"]
    # The superseded ones stay suppressed and are not looked at again.
    for row in rows[2:4]:
        row.refresh_from_db()
        assert (row.status, row.next_attempt_at) == ("suppressed", None)
    assert delivery.deliveries_requeue_due(now=later + timedelta(hours=1)) == 0
    # An interval passes for everything planned above, but the held "resolved" went out just
    # now: another "resolved" right away is held in its turn; a "reopened" is not.
    earlier = timezone.now() - timedelta(seconds=400)
    NotificationDelivery.objects.update(created_at=earlier)
    NotificationDelivery.objects.exclude(pk=last.pk).filter(sent_at__isnull=False).update(
        sent_at=earlier
    )
    actions.incident_change_status(incident=incident, status="investigating", actor=None)
    actions.incident_resolve(incident=incident)
    newest = NotificationDelivery.objects.filter(channel=channel).order_by("-id")[:2]
    assert [(d.kind, d.status) for d in newest] == [
        ("resolved", "suppressed"), ("reopened", "pending"),
    ]  # fmt: skip


def test_a_delivery_whose_worker_died_mid_send_is_retried(make_service, receiver):
    channel = make_channel(kind="webhook", url=receiver.url)
    open_incident(make_service())
    row = delivery_for(channel)
    # What a claim leaves behind when its worker is killed before recording the result.
    NotificationDelivery.objects.filter(pk=row.pk).update(
        status="sending", attempts=1, next_attempt_at=timezone.now() + delivery.SENDING_LEASE
    )
    assert delivery.deliveries_claim_due(now=timezone.now()) == []  # still within its lease

    expired = timezone.now() + delivery.SENDING_LEASE + timedelta(seconds=1)
    assert delivery.deliveries_claim_due(now=expired) == []

    row.refresh_from_db()
    assert row.status == "retrying"
    assert row.attempt_log.get().error == delivery.WORKER_LOST
    make_due(row)
    assert delivery.delivery_attempt(delivery_id=row.pk) == "sent"
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_sweeper_skips_deliveries_another_sweeper_holds(receiver):
    channel = make_channel(kind="webhook", url=receiver.url)
    row = NotificationDelivery.objects.create(
        channel=channel, is_test=True, status="retrying", next_attempt_at=timezone.now()
    )
    locked, release = threading.Event(), threading.Event()

    def other_sweeper() -> None:
        from django.db import connection as thread_connection
        from django.db import transaction

        try:
            with transaction.atomic():
                NotificationDelivery.objects.select_for_update().get(pk=row.pk)
                locked.set()
                release.wait(10)
        finally:
            thread_connection.close()

    thread = threading.Thread(target=other_sweeper)
    thread.start()
    try:
        assert locked.wait(10)
        assert delivery.deliveries_claim_due(now=timezone.now()) == []
    finally:
        release.set()
        thread.join()
    assert delivery.deliveries_claim_due(now=timezone.now()) == [row.pk]


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliver_tasks_send_once(receiver):
    channel = make_channel(kind="webhook", url=receiver.url)
    row = NotificationDelivery.objects.create(
        channel=channel, is_test=True, next_attempt_at=timezone.now()
    )
    outcomes: list[str] = []
    start = threading.Barrier(5)

    def worker() -> None:
        try:
            start.wait(10)
            outcomes.append(delivery.delivery_attempt(delivery_id=row.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["sent", "skipped", "skipped", "skipped", "skipped"]
    assert len(receiver.requests) == 1


# --- test sends ---------------------------------------------------------------------------------


def test_a_test_send_reaches_the_receiver_and_is_audited(receiver, admin_user):
    from accounts.models import AuditEvent

    channel = make_channel(kind="webhook", url=receiver.url)

    sent = delivery.channel_send_test(channel=channel, actor=admin_user)

    assert sent.is_test and sent.incident is None and sent.status == "sent"
    [request] = receiver.requests
    assert request.headers["X-NOC-Event"] == "test"
    assert request.json()["event"] == "test" and request.json()["incident"] is None
    assert AuditEvent.objects.filter(
        verb="send_test", target_id=str(channel.pk), actor=admin_user
    ).exists()
    assert not IncidentEvent.objects.exists()


def test_a_failed_test_send_is_not_retried(receiver, admin_user):
    receiver.fail(1)
    channel = make_channel(kind="slack", url=receiver.url)

    sent = delivery.channel_send_test(channel=channel, actor=admin_user)

    assert sent.status == "failed" and sent.next_attempt_at is None
    assert sent.last_error.startswith("HTTP 500 from receiver")
    assert delivery.deliveries_claim_due(now=timezone.now() + timedelta(days=1)) == []


def test_a_test_email_names_the_channel(admin_user):
    channel = make_channel(name="On-call", kind="email", email_to=["oncall@example.test"])

    delivery.channel_send_test(channel=channel, actor=admin_user)

    [message] = mail.outbox
    assert message.subject == "[NOC] Test notification (On-call)"


# --- channel validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "email"}, "email_to", "at least one address"),
        ({"kind": "webhook", "url": ""}, "url", "needs the URL"),
        ({"kind": "slack", "url": "ftp://example.com/x"}, "url", "scheme must be http"),
        ({"kind": "webhook", "url": "http://[fe80::1]/"}, "url", "link-local"),
        ({"events": []}, "events", "at least one event"),
        ({"events": ["comment"]}, "events", "Not a notifiable event: comment"),
        ({"headers": ["a"]}, "headers", "object of names to values"),
        ({"headers": {"X-Token": 5}}, "headers", "must be a string"),
        ({"headers": {"X-Token": "a\r\nEvil: 1"}}, "headers", "one line"),
        ({"headers": {"X-NOC-Signature": "forged"}}, "headers", "set by the notifier"),
        ({"headers": {"Bad Name": "x"}}, "headers", "not a valid header name"),
    ],
)
def test_invalid_channels_are_refused_naming_the_field(fields, field, message):
    channel = NotificationChannel(
        **{"name": "c", "kind": "webhook", "url": "https://hooks.example.com/x", **fields}
    )
    with pytest.raises(ValidationError) as refused:
        channel.full_clean()
    assert message in " ".join(refused.value.message_dict[field])


def test_a_private_receiver_is_refused_when_private_targets_are_not_allowed(settings):
    settings.NOTIFICATION_ALLOW_PRIVATE = False
    channel = NotificationChannel(name="lan", kind="webhook", url="http://10.0.0.5/hook")
    with pytest.raises(ValidationError, match="private"):
        channel.full_clean()
    settings.NOTIFICATION_ALLOW_PRIVATE = True
    channel.full_clean()
