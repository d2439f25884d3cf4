"""What a collector's configuration must be: checked by the actions before anything is saved,
so the API answers a 400 naming the field and no run starts on a collector that cannot work."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from collectors.choices import TIMEFRAME_SECONDS, CollectorKind
from collectors.kinds.json_paths import path_problem
from observability.points import LABEL_NAME, MAX_NAME_LENGTH, NAME
from services.checks.guard import validate_url_target

SYMBOL = re.compile(r"[A-Z0-9._-]{1,20}")
# Only variables made for it: any other name would let whoever edits a collector send the
# worker's secrets (SECRET_KEY, DATABASE_URL …) to a target of their choice.
TOKEN_ENV_PREFIX = "COLLECTOR_TOKEN_"
ENV_NAME = re.compile(rf"{TOKEN_ENV_PREFIX}[A-Z0-9_]{{1,80}}")
MAX_TIMEOUT_SECONDS = 120.0
MAX_BODY_BYTES_CEILING = 100 * 1024 * 1024
MAX_PATTERNS = 200


def effective_allow_private(collector) -> bool:
    if collector.allow_private is not None:
        return collector.allow_private
    return settings.NOC_CHECK_ALLOW_PRIVATE


def symbol_problem(symbol: Any) -> str | None:
    if not isinstance(symbol, str) or not SYMBOL.fullmatch(symbol):
        return "must be 1 to 20 characters of A-Z, 0-9, '.', '_' or '-' (such as ETHUSDT)"
    return None


def timeframe_problem(timeframe: Any) -> str | None:
    if timeframe not in TIMEFRAME_SECONDS:
        return f"must be one of {', '.join(TIMEFRAME_SECONDS)}"
    return None


def validate_collector(collector) -> None:
    """Raise ValidationError {field: [messages]} for every problem of `collector`."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str | None) -> None:
        if message:
            errors.setdefault(field, []).append(message)

    if collector.kind not in CollectorKind.values:
        add("kind", f"must be one of {', '.join(CollectorKind.values)}")
    if not isinstance(collector.interval_seconds, int) or collector.interval_seconds < 1:
        add("interval_seconds", "must be a whole number of seconds, at least 1")
    timeout = collector.timeout_seconds
    if not isinstance(timeout, int | float) or not 0 < timeout <= MAX_TIMEOUT_SECONDS:
        add("timeout_seconds", f"must be above 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds")
    size = collector.max_body_bytes
    if size is not None and not 0 < size <= MAX_BODY_BYTES_CEILING:
        add("max_body_bytes", f"must be between 1 and {MAX_BODY_BYTES_CEILING} bytes")
    if collector.bearer_token_env and not ENV_NAME.fullmatch(collector.bearer_token_env):
        add("bearer_token_env", f"must name an environment variable {TOKEN_ENV_PREFIX}<NAME> "
            f"(A-Z, 0-9, _), such as {TOKEN_ENV_PREFIX}NODE")  # fmt: skip
    _url(collector, add)
    _labels(collector.extra_labels, add)
    for field in ("metric_allow", "metric_deny"):
        add(field, _patterns_problem(getattr(collector, field)))
    if collector.kind == CollectorKind.HTTP_JSON:
        _json_paths(collector.json_paths, add)
    if collector.kind == CollectorKind.OHLCV:
        add("symbol", symbol_problem(collector.symbol))
        add("timeframe", timeframe_problem(collector.timeframe))
        add("price_path", path_problem(collector.price_path))
    if errors:
        raise ValidationError(errors)


def _url(collector, add) -> None:
    url = collector.url if isinstance(collector.url, str) else ""
    if collector.kind == CollectorKind.OHLCV:
        if "{symbol}" not in url:
            add("url", "must contain {symbol}, replaced by the symbol on each poll")
        url = url.replace("{symbol}", "SYMBOL")
    if not url:
        add("url", "is required")
        return
    add("url", validate_url_target(url, allow_private=effective_allow_private(collector)))


def _labels(labels: Any, add) -> None:
    if not isinstance(labels, dict):
        add("extra_labels", "must be an object of label names to string values")
        return
    for key, value in labels.items():
        if not LABEL_NAME.fullmatch(key) or key.startswith("__"):
            add("extra_labels", f"{key!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        elif not isinstance(value, str) or len(value) > settings.METRICS_MAX_LABEL_LENGTH:
            add("extra_labels", f"{key}: the value must be a string of at most "
                f"{settings.METRICS_MAX_LABEL_LENGTH} characters")  # fmt: skip


def _patterns_problem(patterns: Any) -> str | None:
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        return "must be a list of metric names or globs (node_cpu_*)"
    if len(patterns) > MAX_PATTERNS:
        return f"at most {MAX_PATTERNS} patterns"
    return None


def _json_paths(paths: Any, add) -> None:
    if not isinstance(paths, dict) or not paths:
        add("json_paths", "must map at least one series name to a JSON path")
        return
    for name, expr in paths.items():
        if len(name) > MAX_NAME_LENGTH or not NAME.fullmatch(name):
            add("json_paths", f"{name!r} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        add("json_paths", path_problem(expr) and f"{name}: {path_problem(expr)}")
