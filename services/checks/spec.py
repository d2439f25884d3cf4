"""What a check asks for (`CheckSpec`, `Assertions`) and what it found (`Outcome`).

Plain frozen dataclasses with no Django in sight: the model layer builds specs from `Service`
rows and stores outcomes; the engines only ever see these types.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "MAX_ERROR_CHARS", "Assertions", "CheckSpec", "Outcome", "elapsed_ms"]

KINDS = ("http", "tcp", "dns", "tls")
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Assertions:
    expected_status: tuple[int, ...] = (200,)  # seed "expectedStatus"; empty = any 2xx/3xx
    max_response_time_ms: int | None = None  # seed "maxResponseTime": slower => "degraded"
    body_contains: str = ""
    body_not_contains: str = ""
    json_path: str = ""  # jsonpath-ng expression, e.g. "$.status"
    json_expected: Any = None  # compared to the first match; None => the path must match
    cert_min_days: int | None = None  # certificate must stay valid for more than N days


@dataclass(frozen=True)
class CheckSpec:
    kind: str  # "http" | "tcp" | "dns" | "tls"   ("push" is not run by engines)
    timeout: float = 10.0  # seconds, whole attempt
    retries: int = 0  # extra immediate attempts (0.2 s apart) before a failure counts
    allow_private: bool = True
    # http
    url: str = ""
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    follow_redirects: bool = True
    verify_tls: bool = True
    # tcp / tls
    host: str = ""
    port: int = 0
    # dns
    dns_name: str = ""
    dns_record_type: str = "A"
    dns_expected: str = ""
    dns_server: str = ""  # "ip" or "ip:port"; empty = system resolver
    assertions: Assertions = Assertions()


@dataclass
class Outcome:
    status: str  # "up" | "degraded" | "down"
    response_time_ms: float | None
    status_code: int | None = None
    error: str = ""  # short and human, at most MAX_ERROR_CHARS
    details: dict = field(default_factory=dict)  # small and JSON-safe

    def __post_init__(self) -> None:
        # Errors can embed server-controlled text; keep the stored row small.
        if len(self.error) > MAX_ERROR_CHARS:
            self.error = self.error[: MAX_ERROR_CHARS - 1] + "…"

    @classmethod
    def down(
        cls,
        error: str,
        *,
        response_time_ms: float | None = None,
        status_code: int | None = None,
        details: dict | None = None,
    ) -> Outcome:
        return cls("down", response_time_ms, status_code, error, details or {})


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` value), 0.1 ms precision."""
    return round((time.perf_counter() - started) * 1000, 1)
