"""The public status page (/status/), without login.

It shows the public services (enabled, not tagged `internal`) with their current status and a
90-day uptime bar, and the incidents of those services in public words only. The rendered page
is cached for 30 seconds, shared by every visitor, so it never depends on the request
(rendered without one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from services.choices import ServiceStatus
from services.models import Service
from services.queries import WINDOWS, service_uptime
from web import charts
from web.formatting import percent_label
from web.queries import public

logger = logging.getLogger(__name__)

STATUS_PAGE_CACHE_KEY = "noc:status-page:v2"
STATUS_PAGE_CACHE_SECONDS = 30
REFRESH_SECONDS = 60


@require_safe
def status_page(request: HttpRequest) -> HttpResponse:
    html = cached(STATUS_PAGE_CACHE_KEY, STATUS_PAGE_CACHE_SECONDS, _render_status_page)
    response = HttpResponse(html)
    patch_cache_control(response, public=True, max_age=STATUS_PAGE_CACHE_SECONDS)
    return response


def _render_status_page() -> str:
    status = public.public_status()
    bars = [
        charts.uptime_bar(line.days, label=f"{line.name}: uptime per day, last 90 days")
        for line in status.services
    ]
    return render_to_string(
        "web/status.html",
        {
            "status": status,
            "rows": list(zip(status.services, bars, strict=True)),
            "refresh_seconds": REFRESH_SECONDS,
        },
    )


def cached(key: str, seconds: int, build: Callable[[], str]) -> str:
    """The cached value, or a fresh one. A status page must stay up while Redis is down, so a
    cache error costs a render, not the page."""
    try:
        value = cache.get(key)
    except Exception:
        logger.warning("status page: cache unavailable", exc_info=True)
        return build()
    if value is None:
        value = build()
        try:
            cache.set(key, value, seconds)
        except Exception:
            logger.warning("status page: cache unavailable", exc_info=True)
    return value


# --- badges -----------------------------------------------------------------------------------

BADGE_CACHE_SECONDS = 60
STATUS_BADGE_COLORS = {
    ServiceStatus.UP: "green",
    ServiceStatus.DEGRADED: "yellow",
    ServiceStatus.DOWN: "red",
    ServiceStatus.MAINTENANCE: "blue",
}
UPTIME_BADGE_COLORS = {"green": "green", "yellow": "yellow", "orange": "orange", "red": "red"}


def _svg_response(svg: str) -> HttpResponse:
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    patch_cache_control(response, public=True, max_age=BADGE_CACHE_SECONDS)
    return response


def _public_service(service_id: str) -> Service:
    """A public service, or 404: an internal or unknown service answers the same."""
    service = public.public_services().only("id", "name", "status").filter(pk=service_id).first()
    if service is None:
        raise Http404("No public service with this id.")
    return service


@require_safe
def status_badge(request: HttpRequest, service_id: str) -> HttpResponse:
    """`name | up`: the service's current status, coloured."""
    service = _public_service(service_id)
    color = STATUS_BADGE_COLORS.get(service.status, "grey")
    return _svg_response(charts.badge(service.name, service.get_status_display().lower(), color))


@require_safe
def uptime_badge(request: HttpRequest, service_id: str) -> HttpResponse:
    """`uptime 30d | 99.95 %` over ?window=24h|7d|30d|90d (default 30d), coloured like the
    status page's cells."""
    window = request.GET.get("window", "30d")
    if window not in WINDOWS:
        return HttpResponseBadRequest(
            f"Unknown window {window!r}; use one of {', '.join(WINDOWS)}.",
            content_type="text/plain",
        )
    service = _public_service(service_id)
    key = f"noc:badge:uptime:{service.pk}:{window}"

    def build() -> str:
        percent = service_uptime(service.pk, window).uptime_percent
        message = "no data" if percent is None else f"{percent_label(percent)} %"
        color = UPTIME_BADGE_COLORS.get(charts.uptime_level(percent), "grey")
        return charts.badge(f"uptime {window}", message, color)

    return _svg_response(cached(key, BADGE_CACHE_SECONDS, build))
