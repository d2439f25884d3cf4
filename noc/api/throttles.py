"""API rate limits: DRF throttles counting requests per API key (or signed-in user) and per
client address in fixed windows in the Redis cache, answered 429 with `Retry-After`.

Rates come from settings.NOC_API_THROTTLE_RATES ({scope: "N/period" or None for no limit}),
read at each request so a test or a settings change applies at once. Push pings (/ping/…)
are plain Django views: no DRF throttle runs there. Ingestion endpoints set
`throttle_classes = [IngestRateThrottle]` to replace the two default limits by their own.

When the cache is unreachable the request is let through (and a warning logged): losing the
rate limit degrades the API, losing Redis must not take the API down with it.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from noc.api.rates import parse_rate
from noc.request_context import client_ip

log = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 60
_last_warning = 0.0


def _warn_cache_down(scope: str, error: Exception) -> None:
    """Once a minute per process, not once a request."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY_SECONDS:
        _last_warning = now
        log.warning("API rate limits not applied (%s): the cache is unavailable: %s", scope, error)


class WindowRateThrottle(BaseThrottle):
    """At most N requests per identity in each fixed window of the rate's period."""

    scope = ""

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def identity(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view) -> bool:
        limit = parse_rate(settings.NOC_API_THROTTLE_RATES.get(self.scope))
        identity = self.identity(request) if limit else None
        if identity is None:
            return True
        count, period = limit
        now = time.time()
        window = int(now // period)
        key = f"throttle:{self.scope}:{identity}:{period}:{window}"
        try:
            cache.add(key, 0, timeout=period + 1)
            used = cache.incr(key)
        except ValueError:  # the key expired between add and incr: a new window
            used = 1
        except Exception as error:  # the cache is down: serve rather than fail
            _warn_cache_down(self.scope, error)
            return True
        if used <= count:
            return True
        self.retry_after = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.retry_after


class KeyRateThrottle(WindowRateThrottle):
    """Per key (API key or ingest key); a person signed in by session counts per user."""

    scope = "key"

    def identity(self, request: Request) -> str | None:
        key_id = getattr(request.auth, "pk", None)
        if key_id is not None:  # an API key, or an ingest key: their ids may coincide
            return f"{type(request.auth).__name__.lower()}-{key_id}"
        user = getattr(request, "user", None)
        return f"user-{user.pk}" if user is not None and user.is_authenticated else None


class AddressRateThrottle(WindowRateThrottle):
    """Per client address (REMOTE_ADDR: the proxy in front, if any, is the client here)."""

    scope = "address"

    def identity(self, request: Request) -> str | None:
        return client_ip(request)


class IngestRateThrottle(KeyRateThrottle):
    """For ingestion endpoints (applications pushing data): their own per-key limit."""

    scope = "ingest"

    def identity(self, request: Request) -> str | None:
        return super().identity(request) or client_ip(request)
