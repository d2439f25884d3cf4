"""Building and sending notifications: email, HMAC-signed JSON webhooks, Slack-compatible hooks.

A sender turns one delivery into one message and reports a `SendResult`; it never writes to
the database (incidents/delivery.py records the outcome and decides about retries).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from django.conf import settings
from django.core.mail import send_mail
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from incidents.choices import ChannelKind, EventKind, Severity
from incidents.models import Incident, NotificationChannel, NotificationDelivery
from services.checks.failures import describe_error, find_refusal
from services.checks.guard import GuardedResolver, guarded_socket_factory, validate_url_target

__all__ = [
    "HTTP_TIMEOUT_SECONDS",
    "TEST_EVENT",
    "USER_AGENT",
    "Notice",
    "SendResult",
    "send",
    "sign",
    "webhook_payload",
]

USER_AGENT = "NOC-Notifier/0.1"
HTTP_TIMEOUT_SECONDS = 10.0
TEST_EVENT = "test"
RESPONSE_SNIPPET_BYTES = 200  # enough of an error body to say why, not a whole error page
SEVERITY_COLORS = {
    Severity.CRITICAL: "#cf222e",
    Severity.HIGH: "#e16f24",
    Severity.MEDIUM: "#bf8700",
    Severity.LOW: "#0969da",
}
RESOLVED_COLOR = "#1a7f37"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    response_code: int | None = None
    error: str = ""
    duration_ms: float | None = None
    # Retrying cannot help (a refused address, no recipients): fail the delivery at once.
    permanent: bool = False


@dataclass(frozen=True)
class Notice:
    """What one delivery says, whatever carries it."""

    event: str  # an EventKind value, a NoticeKind value, or TEST_EVENT
    delivery_id: int
    channel: NotificationChannel
    incident: Incident | None
    message: str
    time: datetime
    title: str = ""  # of a notice without an incident
    facts: dict[str, Any] = field(default_factory=dict)  # of such a notice, for webhooks

    @classmethod
    def of(cls, delivery: NotificationDelivery) -> Notice:
        if delivery.event_id:
            event = delivery.event
            return cls(
                event.kind,
                delivery.pk,
                delivery.channel,
                delivery.incident,
                event.message,
                event.time,
            )
        if delivery.notice:
            notice = delivery.notice
            return cls(
                notice["kind"],
                delivery.pk,
                delivery.channel,
                None,
                notice["message"],
                datetime.fromisoformat(notice["time"]),
                title=notice["title"],
                facts=notice.get("facts", {}),
            )
        message = f"Test notification from the NOC for channel {delivery.channel.name!r}."
        return cls(TEST_EVENT, delivery.pk, delivery.channel, None, message, timezone.now())

    @property
    def headline(self) -> str:
        if self.incident is not None:
            incident = self.incident
            return f"{incident.severity.upper()}: {incident.title} ({self.event})"
        if self.event == TEST_EVENT:
            return f"Test notification ({self.channel.name})"
        return self.title or self.message.split("\n", 1)[0][:150]


def send(delivery: NotificationDelivery) -> SendResult:
    """Send `delivery` through its channel's kind."""
    notice = Notice.of(delivery)
    return SENDERS[delivery.channel.kind](notice)


# --- what the messages say ----------------------------------------------------------------------


def incident_url(incident: Incident) -> str:
    """Where a person opens the incident (the admin; the public base from settings)."""
    try:
        path = reverse("admin:incidents_incident_change", args=[incident.pk])
    except NoReverseMatch:  # the incident admin is not registered in this deployment
        path = f"/admin/incidents/incident/{incident.pk}/change/"
    return f"{public_base_url()}{path}"


def public_base_url() -> str:
    return settings.NOC_PUBLIC_URL.rstrip("/")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _human(moment: datetime | None) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S %Z}" if moment else "—"


def incident_document(incident: Incident) -> dict[str, Any]:
    service = incident.service
    return {
        "id": incident.pk,
        "title": incident.title,
        "status": incident.status,
        "severity": incident.severity,
        "service": {"id": service.pk, "name": service.name},
        "detected_at": _iso(incident.detected_at),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "resolved_at": _iso(incident.resolved_at),
        "url": incident_url(incident),
    }


def webhook_payload(notice: Notice) -> dict[str, Any]:
    return {
        "event": notice.event,
        "incident": incident_document(notice.incident) if notice.incident else None,
        "message": notice.message,
        "time": _iso(notice.time),
        **({"title": notice.title, **notice.facts} if notice.title else {}),
    }


def _facts(incident: Incident) -> list[tuple[str, str]]:
    return [
        ("Service", f"{incident.service.name} ({incident.service_id})"),
        ("Status", incident.status),
        ("Severity", incident.severity),
        ("Detected", _human(incident.detected_at)),
        ("Acknowledged", _human(incident.acknowledged_at)),
        ("Resolved", _human(incident.resolved_at)),
    ]


def email_body(notice: Notice) -> str:
    lines = [notice.headline, ""]
    if notice.incident is not None:
        lines += [f"{name + ':':<14}{value}" for name, value in _facts(notice.incident)]
        lines += ["", notice.message] if notice.message else []
        lines += ["", f"Open: {incident_url(notice.incident)}"]
    else:
        lines.append(notice.message)
    return "\n".join(lines) + "\n"


def slack_payload(notice: Notice) -> dict[str, Any]:
    incident = notice.incident
    if incident is None:
        return {"text": f"[NOC] {notice.headline}: {notice.message}"}
    color = RESOLVED_COLOR if notice.event == EventKind.RESOLVED else None
    attachment = {
        "color": color or SEVERITY_COLORS.get(incident.severity, "#6e7781"),
        "title": incident.title,
        "title_link": incident_url(incident),
        "text": notice.message,
        "fields": [{"title": n, "value": v, "short": True} for n, v in _facts(incident)],
        "footer": "NOC",
        "ts": int(notice.time.timestamp()),
    }
    return {"text": f"[NOC] {notice.headline}", "attachments": [attachment]}


def sign(body: bytes, secret: str) -> str:
    """The X-NOC-Signature value: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- senders ------------------------------------------------------------------------------------


def send_email(notice: Notice) -> SendResult:
    recipients = list(notice.channel.email_to)
    if not recipients:
        return SendResult(ok=False, error="the channel has no email recipients", permanent=True)
    started = time.perf_counter()
    try:
        send_mail(
            f"[NOC] {notice.headline}",
            email_body(notice),
            settings.DEFAULT_FROM_EMAIL,
            recipients,
            fail_silently=False,
        )
    except (smtplib.SMTPException, OSError) as exc:
        return SendResult(ok=False, error=f"email not sent: {exc}", duration_ms=_ms(started))
    return SendResult(ok=True, duration_ms=_ms(started))


def send_webhook(notice: Notice) -> SendResult:
    body = _json_bytes(webhook_payload(notice))
    headers = {
        **notice.channel.headers,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-NOC-Event": notice.event,
        "X-NOC-Delivery": str(notice.delivery_id),
    }
    if notice.channel.secret:
        headers["X-NOC-Signature"] = sign(body, notice.channel.secret)
    return post_json(notice.channel.url, body, headers)


def send_slack(notice: Notice) -> SendResult:
    body = _json_bytes(slack_payload(notice))
    headers = {
        **notice.channel.headers,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    return post_json(notice.channel.url, body, headers)


SENDERS: dict[str, Callable[[Notice], SendResult]] = {
    ChannelKind.EMAIL: send_email,
    ChannelKind.WEBHOOK: send_webhook,
    ChannelKind.SLACK: send_slack,
}


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


# --- HTTP ---------------------------------------------------------------------------------------


def post_json(url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    """POST through the request-forgery guard; a 2xx is success, anything else a failure."""
    allow_private = settings.NOTIFICATION_ALLOW_PRIVATE
    # The save-time check again: the setting may have changed, or the row predates it.
    refused = validate_url_target(url, allow_private=allow_private)
    if refused:
        return SendResult(ok=False, error=refused, permanent=True)
    started = time.perf_counter()
    try:
        status, snippet = asyncio.run(_post(url, body, headers, allow_private=allow_private))
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        error = describe_error(exc, timeout=HTTP_TIMEOUT_SECONDS)
        refused = find_refusal(exc) is not None
        return SendResult(ok=False, error=error, duration_ms=_ms(started), permanent=refused)
    if 200 <= status < 300:
        return SendResult(ok=True, response_code=status, duration_ms=_ms(started))
    error = f"HTTP {status} from receiver" + (f": {snippet}" if snippet else "")
    return SendResult(ok=False, response_code=status, error=error, duration_ms=_ms(started))


async def _post(
    url: str, body: bytes, headers: dict[str, str], *, allow_private: bool
) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allow_private=allow_private),
        socket_factory=guarded_socket_factory(allow_private=allow_private),
        force_close=True,  # one request per session: nothing to reuse
    )
    async with (
        aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            # A proxy from the environment would connect to addresses the guard never saw.
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS),
        ) as session,
        # A redirect is a failure: a receiver that moved must be reconfigured, and a POST
        # replayed elsewhere would carry the signature to a host nobody chose.
        session.post(url, data=body, headers=headers, allow_redirects=False) as response,
    ):
        raw = await response.content.read(RESPONSE_SNIPPET_BYTES)
        return response.status, " ".join(raw.decode(errors="replace").split())
