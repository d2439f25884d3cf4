"""Rules a service's configuration must meet before it is saved; each error names its field."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from croniter import CroniterError, croniter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from noc.limits import (
    HEADER_NAME_MAX_CHARS,
    HEADER_VALUE_MAX_CHARS,
    HEADERS_MAX_COUNT,
    JSON_EXPECTED_MAX_CHARS,
    TAGS_MAX_COUNT,
)
from noc.storable import first_unstorable
from services.checks.assertions import validate_json_path
from services.checks.engine import RETRY_DELAY_SECONDS
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

    _storable(service, add)
    _sizes(service, add)
    _schedule(service, add)
    _target(service, add)
    _assertions(service, add)
    if errors:
        raise ValidationError(errors)


def _storable(service, add) -> None:
    """PostgreSQL's text and jsonb cannot hold U+0000 and jsonb has no NaN or Infinity: refused
    here, naming the field, rather than failing the write (the admin and imports skip the API's
    JSON parser, which refuses NUL too)."""
    for model_field in service._meta.concrete_fields:
        problem = unstorable(getattr(service, model_field.attname, None), model_field.name)
        if problem:
            add(model_field.name, problem)


def _sizes(service, add) -> None:
    """The maxima of noc.limits that no single model field carries."""
    if isinstance(service.tags, list) and len(service.tags) > TAGS_MAX_COUNT:
        add("tags", f"At most {TAGS_MAX_COUNT} tags ({len(service.tags)} given).")
    if service.json_expected is not None:
        size = len(json.dumps(service.json_expected))
        if size > JSON_EXPECTED_MAX_CHARS:
            add(
                "json_expected",
                f"The expected value is at most {JSON_EXPECTED_MAX_CHARS:,} characters of JSON "
                f"({size:,} given).",
            )


def unstorable(value: Any, path: str) -> str | None:
    """Why `value` (a string, number, or JSON of them) cannot be stored, or None."""
    found = first_unstorable(value, path)
    return found[1] if found else None


def cron_problem(cron: str, *, window: bool = False) -> str | None:
    """Why `cron` cannot schedule checks (or, `window`, a recurring maintenance window), or
    None. `croniter.is_valid` accepts expressions that never match (31 February, a year gone
    by): they raise CroniterBadDateError at the first lookup, so look the occurrences up now."""
    if not croniter.is_valid(cron, second_at_beginning=True):
        return f"{cron!r} is not a valid cron expression (5 fields, or 6 with seconds first)."
    now = timezone.now()
    try:
        upcoming = croniter(cron, now, second_at_beginning=True)
        upcoming.get_next(datetime)
        if not window:
            upcoming.get_next(datetime)  # a schedule needs a period: two occurrences
    except CroniterError:
        return (
            f"{cron!r} has no upcoming occurrence (an impossible date such as 31 February, "
            "or a year that has passed)."
        )
    if window:
        try:
            croniter(cron, now, second_at_beginning=True).get_prev(datetime)
        except CroniterError:
            return (
                f"{cron!r} has no past occurrence; for a window that starts in a future year, "
                "give starts_at instead."
            )
    return None


def max_check_seconds() -> float:
    # Next to the run_checks task's time limit, so the two stay related.
    from services.tasks import MAX_CHECK_SECONDS

    return MAX_CHECK_SECONDS


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
    cron_error = cron_problem(service.cron) if service.cron else None
    if cron_error:
        add("cron", cron_error)
    timeout = service.timeout_seconds if _finite_number(service.timeout_seconds) else None
    if timeout is not None and timeout <= 0:
        add("timeout_seconds", "The timeout must be positive.")
        timeout = None
    try:
        period = None if cron_error else service.period
    except CroniterError:
        period = None
    if period and service.kind != CheckKind.PUSH and timeout and timeout > period.total_seconds():
        interval = period.total_seconds()
        add(
            "timeout_seconds",
            f"The timeout ({timeout:g}s) must not exceed the interval ({interval:g}s).",
        )
    retries = service.retries if _finite_number(service.retries) else 0
    if timeout and service.kind != CheckKind.PUSH:
        # A batch's checks run concurrently: the batch lasts as long as its slowest check, and
        # the run_checks task is killed (its slots recorded missed) past its time limit.
        worst = timeout * (retries + 1) + retries * RETRY_DELAY_SECONDS
        bound = max_check_seconds()
        if worst > bound:
            add(
                "timeout_seconds",
                f"A check may take up to {worst:g}s (a {timeout:g}s timeout, {retries + 1} "
                f"attempt(s)); at most {bound:g}s is allowed. Lower timeout_seconds or retries.",
            )


def _target(service, add) -> None:
    kind = service.kind
    if kind not in CheckKind.values:
        add("kind", f"Unknown kind {kind!r}; use one of {', '.join(CheckKind.values)}.")
        return
    _headers(service, add)
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


def _headers(service, add) -> None:
    # Every kind: the checks build their spec from them, whatever the kind.
    headers = service.headers
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        add("headers", "Headers must be an object of string names to string values.")
        return
    if len(headers) > HEADERS_MAX_COUNT:
        add("headers", f"At most {HEADERS_MAX_COUNT} headers ({len(headers)} given).")
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n"):
            add("headers", f"Header {name!r} holds a line break (CR or LF).")
        if len(name) > HEADER_NAME_MAX_CHARS or len(value) > HEADER_VALUE_MAX_CHARS:
            add(
                "headers",
                f"Header {name[:40]!r}: names are at most {HEADER_NAME_MAX_CHARS} characters "
                f"and values at most {HEADER_VALUE_MAX_CHARS:,}.",
            )


def _assertions(service, add) -> None:
    if service.json_path:
        problem = validate_json_path(service.json_path)
        if problem:
            add("json_path", problem)
    for code in service.expected_status or []:
        if not 100 <= code <= 599:
            add("expected_status", f"{code} is not an HTTP status code (100-599).")
