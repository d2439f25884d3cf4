"""The notification channels and deliveries API (who may read and write, validation, the
write-only secret, audit, test sends, the delivery log and its filters) and their admin."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.audit import MASK
from accounts.choices import Role
from accounts.models import AuditEvent
from incidents import actions, delivery
from incidents.choices import IncidentSource
from incidents.models import NotificationChannel, NotificationDelivery

pytestmark = pytest.mark.django_db

CHANNELS = "/api/notification-channels/"
DELIVERIES = "/api/notification-deliveries/"


@pytest.fixture(autouse=True)
def _notification_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.NOTIFICATION_ALLOW_PRIVATE = True


@pytest.fixture
def admin_api(client_as):
    return client_as(Role.ADMIN)


def webhook(receiver, **fields) -> dict:
    return {"name": "ops-hook", "kind": "webhook", "url": receiver.url, **fields}


def channel_url(channel: NotificationChannel, action: str = "") -> str:
    return f"{CHANNELS}{channel.pk}/{action + '/' if action else ''}"


def stored_channel(receiver, **fields) -> NotificationChannel:
    fields = {"name": "stored", "kind": "webhook", "url": receiver.url, **fields}
    return delivery.channel_save(actor=None, channel=NotificationChannel(**fields))


# --- roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "minimum"),
    [
        ("get", CHANNELS, Role.ADMIN),
        ("post", CHANNELS, Role.ADMIN),
        ("get", "channel", Role.ADMIN),
        ("patch", "channel", Role.ADMIN),
        ("delete", "channel", Role.ADMIN),
        ("post", "test", Role.ADMIN),
        ("get", DELIVERIES, Role.OPERATOR),
    ],
)
@pytest.mark.parametrize("role", [None, Role.VIEWER, Role.OPERATOR, Role.ADMIN])
def test_channels_are_for_admins_and_the_delivery_log_for_operators(
    client_as, receiver, method, path, minimum, role
):
    channel = stored_channel(receiver)
    url = {"channel": channel_url(channel), "test": channel_url(channel, "test")}.get(path, path)
    payload = webhook(receiver, name="new") if method == "post" and path == CHANNELS else {}
    if method == "patch":
        payload = {"enabled": False}

    response = getattr(client_as(role), method)(url, payload, format="json")

    ranks = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
    if role is None:
        assert response.status_code in (401, 403)
    elif ranks.index(role) >= ranks.index(minimum):
        assert response.status_code < 400, response.content
    else:
        assert response.status_code == 403
        assert minimum in response.json()["message"]


# --- create, read, update, delete ---------------------------------------------------------------


def test_the_secret_is_shown_once_at_creation_and_masked_in_the_audit(
    admin_api, receiver, make_service
):
    service = make_service()
    response = admin_api.post(
        CHANNELS,
        webhook(receiver, services=[service.pk], events=["opened", "resolved"]),
        format="json",
    )

    assert response.status_code == 201, response.content
    created = response.json()
    channel = NotificationChannel.objects.get(pk=created["id"])
    assert created["secret"] == channel.secret and len(channel.secret) >= 32
    assert created["has_secret"] is True
    assert created["services"] == [service.pk]
    assert created["events"] == ["opened", "resolved"]
    shown = admin_api.get(channel_url(channel)).json()
    assert "secret" not in shown and shown["has_secret"] is True
    assert all("secret" not in row for row in admin_api.get(CHANNELS).json()["results"])
    audit = AuditEvent.objects.get(action="create", target_id=str(channel.pk))
    assert audit.changes["secret"] == [None, MASK]
    assert audit.changes["services"] == [None, [service.pk]]
    assert channel.secret not in str(audit.changes)


def test_a_given_secret_is_kept_and_a_change_of_it_is_audited_masked(admin_api, receiver):
    response = admin_api.post(CHANNELS, webhook(receiver, secret="s3cret-one"), format="json")
    channel = NotificationChannel.objects.get(pk=response.json()["id"])
    assert channel.secret == "s3cret-one"

    response = admin_api.patch(channel_url(channel), {"secret": "s3cret-two"}, format="json")

    assert response.status_code == 200 and "secret" not in response.json()
    channel.refresh_from_db()
    assert channel.secret == "s3cret-two"
    audit = AuditEvent.objects.get(action="update", target_id=str(channel.pk))
    assert audit.changes == {"secret": [MASK, MASK]}


def test_an_email_channel_is_created_and_routed(admin_api, make_service):
    service = make_service()
    response = admin_api.post(
        CHANNELS,
        {
            "name": "on-call",
            "kind": "email",
            "email_to": ["oncall@example.test"],
            "services": [service.pk],
            "min_severity": "high",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    channel = NotificationChannel.objects.get(name="on-call")
    assert list(channel.services.all()) == [service]
    assert channel.events == [
        "opened",
        "acknowledged",
        "resolved",
        "reopened",
        "slo_ticket",
        "alert_firing",
        "alert_resolved",
    ]


def test_patching_routes_and_is_audited_in_the_same_request(admin_api, receiver, make_service):
    channel = stored_channel(receiver)
    service = make_service()

    response = admin_api.patch(
        channel_url(channel), {"services": [service.pk], "is_default": True}, format="json"
    )

    assert response.status_code == 200, response.content
    audit = AuditEvent.objects.get(action="update", target_id=str(channel.pk))
    assert audit.changes == {"is_default": [False, True], "services": [[], [service.pk]]}


def test_deleting_a_channel_is_audited(admin_api, receiver):
    channel = stored_channel(receiver)

    assert admin_api.delete(channel_url(channel)).status_code == 204

    assert not NotificationChannel.objects.exists()
    assert AuditEvent.objects.filter(action="delete", target_id=str(channel.pk)).exists()


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field", "text"),
    [
        (
            {"kind": "webhook", "url": "http://169.254.169.254/latest/"},
            "url",
            "address 169.254.169.254 is refused (cloud metadata)",
        ),
        (
            {"kind": "webhook", "url": "http://[::a9fe:a9fe]/latest/"},
            "url",
            "address ::a9fe:a9fe is refused (cloud metadata)",
        ),
        ({"kind": "slack", "url": ""}, "url", "needs the URL"),
        ({"kind": "email", "email_to": []}, "email_to", "at least one address"),
        ({"kind": "email", "email_to": ["not-an-address"]}, "email_to.0", "valid email"),
        ({"kind": "webhook", "url": "https://h.example.com/", "events": []}, "events", "event"),
        ({"kind": "webhook", "url": "https://h.example.com/", "events": ["comment"]}, "events.0",
         "not a valid choice"),
        ({"kind": "webhook", "url": "https://h.example.com/", "headers": {"X-A": 1}}, "headers",
         "must be a string"),
        ({"kind": "webhook", "url": "https://h.example.com/", "services": ["nope"]}, "services",
         "Unknown service ids: nope"),
    ],
)  # fmt: skip
def test_an_invalid_channel_is_a_400_naming_the_field(admin_api, payload, field, text):
    response = admin_api.post(CHANNELS, {"name": "bad", **payload}, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors, errors
    assert text in " ".join(errors[field])
    assert not NotificationChannel.objects.exists()
    assert not AuditEvent.objects.filter(
        action="create", target_type="incidents.notificationchannel"
    ).exists()


def test_a_patch_is_validated_against_the_whole_channel(admin_api, receiver):
    channel = stored_channel(receiver)

    response = admin_api.patch(channel_url(channel), {"kind": "email"}, format="json")

    assert response.status_code == 400
    assert "email_to" in response.json()["errors"]
    channel.refresh_from_db()
    assert channel.kind == "webhook"


# --- test sends ---------------------------------------------------------------------------------


def test_the_test_endpoint_sends_now_and_answers_with_the_attempt(admin_api, receiver):
    channel = stored_channel(receiver)

    response = admin_api.post(channel_url(channel, "test"))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True and body["status"] == "sent" and body["response_code"] == 200
    assert body["delivery"]["is_test"] is True
    assert len(body["delivery"]["attempt_log"]) == 1
    assert receiver.requests[0].json()["event"] == "test"


def test_a_failing_test_send_answers_with_the_receivers_error(admin_api, receiver):
    receiver.fail(1, status=500)
    channel = stored_channel(receiver)

    body = admin_api.post(channel_url(channel, "test")).json()

    assert body["ok"] is False and body["status"] == "failed"
    assert body["response_code"] == 500
    assert body["error"].startswith("HTTP 500 from receiver")


# --- the delivery log ---------------------------------------------------------------------------


def _deliveries(receiver, make_service) -> tuple[NotificationChannel, list[int]]:
    """Two incidents notified to one channel: the first sent, the second left retrying."""
    channel = NotificationChannel.objects.filter(name="stored").first()
    channel = channel or stored_channel(receiver, is_default=True)
    incidents = [
        actions.incident_open(
            service=make_service(),
            source=IncidentSource.MANUAL,
            impact_started_at=timezone.now(),
            severity="high",
        )
        for _ in range(2)
    ]
    for index, incident in enumerate(incidents):
        receiver.fail(index)
        row = NotificationDelivery.objects.get(incident=incident)
        delivery.delivery_attempt(delivery_id=row.pk)
    return channel, [i.pk for i in incidents]


def test_operators_list_deliveries_with_their_attempts_and_filters(
    client_as, receiver, make_service
):
    channel, (sent_incident, retrying_incident) = _deliveries(receiver, make_service)
    api = client_as(Role.OPERATOR)

    rows = api.get(DELIVERIES).json()["results"]
    assert {r["status"] for r in rows} == {"sent", "retrying"}
    retrying = api.get(DELIVERIES, {"status": "retrying"}).json()["results"]
    assert [r["incident"] for r in retrying] == [retrying_incident]
    assert retrying[0]["attempt_log"][0]["response_code"] == 500
    assert retrying[0]["channel_name"] == channel.name and retrying[0]["event_kind"] == "opened"
    by_incident = api.get(DELIVERIES, {"incident": sent_incident}).json()["results"]
    assert [r["status"] for r in by_incident] == ["sent"]
    assert len(api.get(DELIVERIES, {"channel": channel.pk}).json()["results"]) == 2
    assert api.get(DELIVERIES, {"channel": channel.pk + 1}).json()["results"] == []
    assert api.get(DELIVERIES, {"status": "nonsense"}).status_code == 400


def test_the_delivery_log_holds_its_query_count(client_as, receiver, make_service):
    _deliveries(receiver, make_service)
    api = client_as(Role.OPERATOR)
    with CaptureQueriesContext(connection) as few:
        api.get(DELIVERIES)
    _deliveries(receiver, make_service)
    with CaptureQueriesContext(connection) as more:
        response = api.get(DELIVERIES)
    assert len(response.json()["results"]) == 4
    assert len(more) == len(few)


# --- the admin ----------------------------------------------------------------------------------

CHANNEL_ADMIN = "/admin/incidents/notificationchannel/"
DELIVERY_ADMIN = "/admin/incidents/notificationdelivery/"


def admin_login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def channel_form(**overrides: str | list[str]) -> dict:
    """The add/change form as a browser posts it (unchecked boxes are absent)."""
    data = {
        "name": "pager", "kind": "email", "enabled": "on", "events": ["opened", "resolved"],
        "min_severity": "low", "email_to": "oncall@example.test", "url": "", "headers": "{}",
    }  # fmt: skip
    data.update(overrides)
    return data


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_an_admin_adds_a_channel_audited_once_and_sees_its_secret_once(admin_user, make_service):
    service = make_service()
    client = admin_login(admin_user)

    response = client.post(f"{CHANNEL_ADMIN}add/", channel_form(services=[service.pk]), follow=True)

    assert response.status_code == 200
    channel = NotificationChannel.objects.get(name="pager")
    assert channel.events == ["opened", "resolved"] and list(channel.services.all()) == [service]
    assert any(channel.secret in m for m in messages_of(response))
    [audit] = AuditEvent.objects.filter(target_id=str(channel.pk))
    assert audit.action == "create" and audit.changes["services"] == [None, [service.pk]]
    page = client.get(f"{CHANNEL_ADMIN}{channel.pk}/change/").content.decode()
    assert channel.secret not in page


def test_the_admin_form_refuses_a_metadata_url(admin_user):
    response = admin_login(admin_user).post(
        f"{CHANNEL_ADMIN}add/",
        channel_form(kind="webhook", email_to="", url="http://169.254.169.254/"),
    )
    assert response.status_code == 200  # the form again, with the error
    assert "cloud metadata" in response.content.decode()
    assert not NotificationChannel.objects.exists()


def test_the_admin_sends_a_test_notification(admin_user):
    channel = delivery.channel_save(
        actor=None,
        channel=NotificationChannel(name="mail", kind="email", email_to=["a@example.test"]),
    )
    response = admin_login(admin_user).post(
        CHANNEL_ADMIN,
        {"action": "send_test_notification", "_selected_action": [channel.pk]},
        follow=True,
    )
    assert "mail: test sent." in messages_of(response)
    assert len(mail.outbox) == 1


def test_rotating_the_secret_shows_the_new_one_once(admin_user, receiver):
    channel = stored_channel(receiver)
    old = channel.secret
    response = admin_login(admin_user).post(
        CHANNEL_ADMIN, {"action": "rotate_secret", "_selected_action": [channel.pk]}, follow=True
    )
    channel.refresh_from_db()
    assert channel.secret != old
    assert any(channel.secret in m for m in messages_of(response))
    assert AuditEvent.objects.get(action="update", target_id=str(channel.pk)).changes == {
        "secret": [MASK, MASK]
    }


@pytest.mark.parametrize(
    ("role", "channels", "deliveries"),
    [(Role.VIEWER, 403, 403), (Role.OPERATOR, 403, 200), (Role.ADMIN, 200, 200)],
)
def test_the_admin_shows_channels_to_admins_and_deliveries_to_operators(
    make_user, receiver, make_service, role, channels, deliveries
):
    _deliveries(receiver, make_service)
    client = admin_login(make_user(role))
    assert client.get(CHANNEL_ADMIN).status_code == channels
    assert client.get(DELIVERY_ADMIN).status_code == deliveries
    if deliveries == 200:
        row = NotificationDelivery.objects.filter(status="retrying").get()
        page = client.get(f"{DELIVERY_ADMIN}{row.pk}/change/")
        assert page.status_code == 200
        assert "HTTP 500 from receiver" in page.content.decode()
