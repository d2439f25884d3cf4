"""Validation of notification channels, shared by the model's clean(), the admin and the API.

Errors are keyed by the field at fault. URLs go through the request-forgery guard at save
time (literal addresses); hostnames are checked again at every send, after resolution.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError

from incidents.choices import CHANNEL_EVENTS, ChannelKind
from incidents.models import NotificationChannel
from noc.limits import (
    EMAILS_MAX_COUNT,
    HEADER_NAME_MAX_CHARS,
    HEADER_VALUE_MAX_CHARS,
    HEADERS_MAX_COUNT,
)
from services.checks.guard import validate_url_target

__all__ = ["RESERVED_HEADERS", "channel_errors", "validate_channel"]

# Headers the notifier sets itself; a channel overriding them would break the signature, the
# receiver's dedup or the request framing.
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "user-agent"}
)
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token


def validate_channel(channel: NotificationChannel) -> None:
    """Raise a field-keyed ValidationError when `channel` cannot deliver what it promises."""
    errors = channel_errors(channel)
    if errors:
        raise ValidationError(errors)


def channel_errors(channel: NotificationChannel) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for field, messages in (
        ("email_to", _email_errors(channel)),
        ("url", _url_errors(channel)),
        ("events", _event_errors(channel.events)),
        ("headers", _header_errors(channel.headers)),
    ):
        if messages:
            errors[field] = messages
    return errors


def _email_errors(channel: NotificationChannel) -> list[str]:
    if channel.kind == ChannelKind.EMAIL and not channel.email_to:
        return ["An email channel needs at least one address."]
    if channel.email_to and len(channel.email_to) > EMAILS_MAX_COUNT:
        return [f"At most {EMAILS_MAX_COUNT} addresses ({len(channel.email_to)} given)."]
    return []


def _url_errors(channel: NotificationChannel) -> list[str]:
    if channel.kind not in (ChannelKind.WEBHOOK, ChannelKind.SLACK):
        return []
    if not channel.url:
        return [f"A {channel.kind} channel needs the URL of its receiver."]
    reason = validate_url_target(channel.url, allow_private=settings.NOTIFICATION_ALLOW_PRIVATE)
    return [f"This URL cannot receive notifications: {reason}."] if reason else []


def _event_errors(events: list[str] | None) -> list[str]:
    if not events:
        return [f"Choose at least one event: {', '.join(CHANNEL_EVENTS)}."]
    unknown = [e for e in events if e not in CHANNEL_EVENTS]
    if unknown:
        return [
            f"Not a notifiable event: {', '.join(map(str, unknown))}; "
            f"use {', '.join(CHANNEL_EVENTS)}."
        ]
    return []


def _header_errors(headers: object) -> list[str]:
    if headers in (None, {}):
        return []
    if not isinstance(headers, dict):
        return ['Headers are an object of names to values, e.g. {"Authorization": "Bearer …"}.']
    if len(headers) > HEADERS_MAX_COUNT:
        return [f"At most {HEADERS_MAX_COUNT} headers ({len(headers)} given)."]
    return [message for name, value in headers.items() if (message := _header_error(name, value))]


def _header_error(name: object, value: object) -> str | None:
    if not isinstance(name, str) or not HEADER_NAME.match(name):
        return f"{name!r} is not a valid header name."
    if not isinstance(value, str):
        return f"The value of {name} must be a string."
    if "\r" in value or "\n" in value or "\x00" in value:
        return f"The value of {name} must be one line of text."
    if len(name) > HEADER_NAME_MAX_CHARS or len(value) > HEADER_VALUE_MAX_CHARS:
        return (
            f"Header {name[:40]!r}: names are at most {HEADER_NAME_MAX_CHARS} characters and "
            f"values at most {HEADER_VALUE_MAX_CHARS:,}."
        )
    if name.lower() in RESERVED_HEADERS or name.lower().startswith("x-noc-"):
        return f"{name} is set by the notifier and cannot be overridden."
    return None
