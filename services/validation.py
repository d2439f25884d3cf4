"""Rules a service's configuration must meet before it is saved; each error names its field."""

from __future__ import annotations

from urllib.parse import urlsplit

from croniter import croniter
from django.conf import settings
from django.core.exceptions import ValidationError

from services.checks.assertions import validate_json_path
from services.checks.guard import literal_ip, refusal_reason, validate_url_target
from services.choices import CheckKind


def effective_allow_private(service) -> bool:
    if service.allow_private is not None:
        return service.allow_private
    return settings.NOC_CHECK_ALLOW_PRIVATE


def validate_service(service) -> None:
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    _schedule(service, add)
    _target(service, add)
    _assertions(service, add)
    if errors:
        raise ValidationError(errors)


def _schedule(service, add) -> None:
    if service.cron and service.interval_seconds:
        add("cron", "Give either an interval or a cron expression, not both.")
    if not service.cron and not service.interval_seconds:
        add(
            "interval_seconds",
            "An interval in seconds (at least 1) or a cron expression is required.",
        )
    if service.interval_seconds is not None and service.interval_seconds < 1:
        add("interval_seconds", "The interval must be at least 1 second.")
    if service.cron and not croniter.is_valid(service.cron, second_at_beginning=True):
        add(
            "cron",
            f"{service.cron!r} is not a valid cron expression (5 fields, or 6 with seconds first).",
        )
    if service.timeout_seconds is not None and service.timeout_seconds <= 0:
        add("timeout_seconds", "The timeout must be positive.")
    valid_cron = not service.cron or croniter.is_valid(service.cron, second_at_beginning=True)
    period = service.period if valid_cron else None
    timeout = service.timeout_seconds
    if period and service.kind != CheckKind.PUSH and timeout and timeout > period.total_seconds():
        interval = period.total_seconds()
        add(
            "timeout_seconds",
            f"The timeout ({timeout:g}s) must not exceed the interval ({interval:g}s).",
        )


def _target(service, add) -> None:
    kind = service.kind
    if kind not in CheckKind.values:
        add("kind", f"Unknown kind {kind!r}; use one of {', '.join(CheckKind.values)}.")
        return
    if kind == CheckKind.HTTP:
        _http_target(service, add)
    if kind in (CheckKind.TCP, CheckKind.TLS):
        if not service.host:
            add("host", f"A host is required for {kind} checks.")
        if kind == CheckKind.TCP and service.port is None:
            add("port", "A port is required for tcp checks.")
    if service.port is not None and not 1 <= service.port <= 65535:
        add("port", f"Port {service.port} is out of range (1-65535).")
    if kind == CheckKind.DNS and not service.dns_name:
        add("dns_name", "A name to resolve is required for dns checks.")
    ip = literal_ip(service.host) if kind in (CheckKind.TCP, CheckKind.TLS) else None
    if ip:
        reason = refusal_reason(ip, allow_private=effective_allow_private(service))
        if reason:
            add("host", f"Address {ip} is refused ({reason}).")


def _http_target(service, add) -> None:
    if not service.url:
        add("url", "A URL is required for http checks.")
        return
    parts = urlsplit(service.url)
    if parts.scheme not in ("http", "https"):
        add("url", f"Only http and https URLs can be checked, not {parts.scheme or 'no scheme'}.")
        return
    if not parts.hostname:
        add("url", "The URL has no host.")
        return
    reason = validate_url_target(service.url, allow_private=effective_allow_private(service))
    if reason:
        add("url", reason)
    if not isinstance(service.headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in service.headers.items()
    ):
        add("headers", "Headers must be an object of string names to string values.")


def _assertions(service, add) -> None:
    if service.json_path:
        problem = validate_json_path(service.json_path)
        if problem:
            add("json_path", problem)
    for code in service.expected_status or []:
        if not 100 <= code <= 599:
            add("expected_status", f"{code} is not an HTTP status code (100-599).")
