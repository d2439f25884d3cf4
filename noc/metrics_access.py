"""Who may read GET /metrics, kept apart from what it exposes (services/metrics.py).

/metrics names every service, internal ones included. With NOC_METRICS_TOKEN set it needs
`Authorization: Bearer <token>`; production refuses to start without a token unless
NOC_METRICS_ENABLED=false (noc/settings.py), so only development serves it openly.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# Production refuses shorter tokens: a bearer secret worth guessing at is a weak one.
METRICS_TOKEN_MIN_CHARS = 16


def metrics_token_problem(*, production: bool, enabled: bool, token: str) -> str | None:
    """Why these settings must not start (None: they may)."""
    if not production or not enabled:
        return None
    if not token:
        return (
            "NOC_METRICS_TOKEN must be set when NOC_ENV=production: /metrics names every "
            "service (internal ones too); give scrapers a token of at least "
            f"{METRICS_TOKEN_MIN_CHARS} characters, or set NOC_METRICS_ENABLED=false"
        )
    if len(token) < METRICS_TOKEN_MIN_CHARS:
        return (
            f"NOC_METRICS_TOKEN must be at least {METRICS_TOKEN_MIN_CHARS} characters when "
            f"NOC_ENV=production (it has {len(token)})"
        )
    return None


def authorized(request: HttpRequest) -> bool:
    token = settings.NOC_METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def metrics_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 when /metrics is switched off, 401 (with a Bearer challenge) without the token."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.NOC_METRICS_ENABLED:
            return HttpResponse("not found", status=404, content_type="text/plain")
        if not authorized(request):
            response = HttpResponse("unauthorized", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return view(request, *args, **kwargs)

    return guarded
