"""Judge what a check observed against its `Assertions`: pure functions, no I/O.

Each rule returns an error message or None; the first broken rule makes the check "down", and
a check that passes every rule but answers slower than allowed is "degraded".
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng.ext import parse as parse_json_path

from services.checks.spec import Assertions

__all__ = [
    "body_error",
    "cert_error",
    "evaluate_http",
    "evaluate_response_time",
    "json_path_error",
    "status_error",
    "validate_json_path",
]

Verdict = tuple[str, str]  # (status, error)
_SHOWN = 80  # characters of operator or server text quoted in a message


def evaluate_http(
    assertions: Assertions,
    *,
    status_code: int,
    elapsed_ms: float,
    body: str,
    cert_days_left: int | None = None,
) -> Verdict:
    """The verdict on one HTTP response."""
    error = (
        status_error(assertions.expected_status, status_code)
        or body_error(assertions, body)
        or json_path_error(assertions, body)
        or cert_error(assertions.cert_min_days, cert_days_left)
    )
    if error:
        return "down", error
    return evaluate_response_time(assertions, elapsed_ms)


def evaluate_response_time(assertions: Assertions, elapsed_ms: float) -> Verdict:
    """Up, or degraded when slower than `max_response_time_ms` (any kind of check)."""
    limit = assertions.max_response_time_ms
    if limit is not None and elapsed_ms > limit:
        return "degraded", f"response time {elapsed_ms:.0f} ms exceeds {limit} ms"
    return "up", ""


def status_error(expected: tuple[int, ...], status_code: int) -> str | None:
    if not expected:
        if 200 <= status_code < 400:
            return None
        return f"expected a 2xx or 3xx status, got {status_code}"
    if status_code in expected:
        return None
    return f"expected status {'/'.join(map(str, expected))}, got {status_code}"


def body_error(assertions: Assertions, body: str) -> str | None:
    # Case-sensitive on purpose: keyword monitors match exactly what the page says.
    if assertions.body_contains and assertions.body_contains not in body:
        return f'body does not contain "{assertions.body_contains[:_SHOWN]}"'
    if assertions.body_not_contains and assertions.body_not_contains in body:
        return f'body contains "{assertions.body_not_contains[:_SHOWN]}"'
    return None


def json_path_error(assertions: Assertions, body: str) -> str | None:
    expr = assertions.json_path
    if not expr:
        return None
    malformed = validate_json_path(expr)
    if malformed:
        return malformed
    try:
        document = json.loads(body)
    except ValueError:
        return "body is not valid JSON"
    matches = _compiled(expr).find(document)
    if not matches:
        return f"json path {expr} matched nothing"
    value, expected = matches[0].value, assertions.json_expected
    if expected is None or json_equal(value, expected):
        return None
    return f"json path {expr} is {_shown(value)}, expected {_shown(expected)}"


def json_equal(value: Any, expected: Any) -> bool:
    """`value == expected`, where an expected string also matches a value's JSON text.

    Forms store the expected value as text, so "200" must match 200 and "true" must match
    true; and True must not match 1 as it would in Python.
    """
    if isinstance(expected, str) and not isinstance(value, str):
        return json.dumps(value, separators=(",", ":")) == expected.strip()
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    return value == expected


def cert_error(min_days: int | None, days_left: int | None) -> str | None:
    """The certificate must stay valid for more than `min_days` days."""
    if min_days is None or days_left is None or days_left > min_days:
        return None
    if days_left < 0:
        return f"certificate expired {_days(-days_left)} ago"
    return f"certificate expires in {_days(days_left)}"


def validate_json_path(expr: str) -> str | None:
    """Save-time check: an error message when `expr` is not a JSONPath expression."""
    try:
        _compiled(expr)
    except Exception as exc:  # jsonpath-ng raises bare Exception on parse errors
        return f"invalid JSON path {expr!r}: {exc}"
    return None


@lru_cache(maxsize=1024)
def _compiled(expr: str) -> JSONPath:
    # Many services share a handful of expressions; parsing is the costly part.
    return parse_json_path(expr)


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _shown(value: Any) -> str:
    return json.dumps(value, default=str)[:_SHOWN]
