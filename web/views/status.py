"""The public status page (/status/), its JSON feed and its badges, without login.

The page shows what the admin's status page settings choose (by default every enabled service
not tagged `internal`), grouped as they say, with a 90-day uptime bar each, announced
maintenance, and the incidents of those services in public words only (their public title and
the updates operators wrote for the public). The rendered page and feed are cached for 30
seconds, shared by every visitor, so they never depend on the request (rendered without one).
Switched off, or with nothing public, the page and the feed answer 404.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_safe

from noc.formatting import percent_label
from services.choices import ServiceStatus
from services.models import Service
from services.queries import WINDOWS, service_uptime
from web import charts
from web.access import reader_required
from web.caching import cached
from web.queries import public

logger = logging.getLogger(__name__)

STATUS_PAGE_CACHE_KEY = "noc:status-page:v5"  # gzip-compressed HTML
STATUS_FEED_CACHE_KEY = "noc:status-feed:v1"
STATUS_PAGE_CACHE_SECONDS = 30
STATUS_PAGE_REFRESH_SECONDS = 20  # web.status_page_refresh, ahead of the cache's expiry
# The worker renders the page ahead only while someone looks at it: a visit marks it viewed for
# this long. A page nobody opens (a fleet of 20,000 services has a page of 20,000 rows) costs
# nothing; the first visit after a quiet spell renders it (or gets the previous render).
STATUS_PAGE_VIEWED_KEY = "noc:status-page:viewed"
STATUS_PAGE_VIEWED_SECONDS = 600
REFRESH_SECONDS = 60
OFF = ""  # what the cache holds for a page that is off
# Past this many services, each uptime bar is drawn compact (charts.uptime_bar_compact): a page
# of 2,000 services with a cell and tooltip per day would be 27 MB of HTML.
COMPACT_BARS_AFTER = 100
FEED_ITEMS = 50


def _public_response(body: str | bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    patch_cache_control(response, public=True, max_age=STATUS_PAGE_CACHE_SECONDS)
    return response


@require_safe
def status_page(request: HttpRequest) -> HttpResponse:
    """Cached compressed (a large page is sent and held in Redis as a tenth of itself), sent
    as such to the clients that accept gzip (every browser), decompressed for the others."""
    body = cached_renewed_once(
        STATUS_PAGE_CACHE_KEY, STATUS_PAGE_CACHE_SECONDS, _compressed_status_page
    )
    _mark_viewed()
    if body == OFF:
        raise Http404("The status page is off.")
    content_type = "text/html; charset=utf-8"
    if "gzip" not in request.headers.get("Accept-Encoding", ""):
        response = _public_response(gzip.decompress(body), content_type)
    else:
        response = _public_response(body, content_type)
        response["Content-Encoding"] = "gzip"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


def _compressed_status_page() -> bytes | str:
    html = _render_status_page()
    return OFF if html == OFF else gzip.compress(html.encode(), compresslevel=6, mtime=0)


def _render_status_page() -> str:
    status = public.public_status()
    if status.is_off:
        return OFF
    many = sum(len(group.services) for group in status.groups) > COMPACT_BARS_AFTER
    bar = charts.uptime_bar_compact if many else charts.uptime_bar
    groups = [
        (
            group,
            [
                (line, bar(line.days, label=f"{line.name}: uptime per day, last 90 days"))
                for line in group.services
            ],
        )
        for group in status.groups
    ]
    return render_to_string(
        "web/status.html",
        {
            "status": status,
            "page": status.page,
            "groups": groups,
            "refresh_seconds": REFRESH_SECONDS,
        },
    )


@require_safe
def status_feed(request: HttpRequest) -> HttpResponse:
    """The status page as a JSON Feed 1.1 (https://jsonfeed.org/version/1.1): one item per
    incident (public words and updates) and per announced maintenance; the overall status
    and each service's in `_noc`."""
    body = cached(
        STATUS_FEED_CACHE_KEY, STATUS_PAGE_CACHE_SECONDS, _render_feed, what="status page"
    )
    if body == OFF:
        raise Http404("The status page is off.")
    return _public_response(body, "application/feed+json")


def _absolute(path: str) -> str:
    return settings.NOC_PUBLIC_URL.rstrip("/") + path


def _render_feed() -> str:
    status = public.public_status()
    if status.is_off:
        return OFF
    page_url = _absolute(reverse("web:status-page"))
    items = [
        _incident_item(incident, page_url)
        for incident in [*status.active_incidents, *status.resolved_incidents]
    ]
    items += [_maintenance_item(item, page_url, status) for item in status.maintenance]
    items.sort(key=lambda item: item["date_modified"], reverse=True)
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": status.page.title,
        "home_page_url": page_url,
        "feed_url": _absolute(reverse("web:status-feed")),
        "description": status.overall.text,
        "items": items[:FEED_ITEMS],
        "_noc": {
            "status": status.overall.level,
            "status_text": status.overall.text,
            "updated": status.now.isoformat(),
            "services": [
                {"name": line.name, "status": line.status, "uptime_90d": line.uptime_percent}
                for line in status.services
            ],
        },
    }
    return json.dumps(feed, ensure_ascii=False)


def _incident_item(incident: public.PublicIncident, page_url: str) -> dict[str, Any]:
    lines = [
        f"{u.phase_label} ({u.time:%Y-%m-%d %H:%M} UTC): {u.message}" for u in incident.updates
    ]
    state = "Resolved" if incident.resolved_at else incident.status_label
    return {
        "id": f"incident-{incident.id}",
        "url": f"{page_url}#incident-{incident.id}",
        "title": f"{incident.title} ({state})",
        "content_text": "\n\n".join(lines) or f"{incident.service_name}: {state}.",
        "date_published": incident.started_at.isoformat(),
        "date_modified": incident.updated_at.isoformat(),
        "tags": ["incident", incident.status],
        "_noc": {
            "service": incident.service_name,
            "status": incident.status,
            "started_at": incident.started_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        },
    }


def _maintenance_item(
    item: public.Announcement, page_url: str, status: public.PublicStatus
) -> dict[str, Any]:
    when = item.starts_at or status.now
    until = f" until {item.ends_at:%Y-%m-%d %H:%M} UTC" if item.ends_at else ""
    return {
        "id": f"maintenance-{item.id}-{when:%Y%m%dT%H%M}",
        "url": f"{page_url}#maintenance",
        "title": f"Scheduled maintenance: {', '.join(item.services)}",
        "content_text": f"From {when:%Y-%m-%d %H:%M} UTC{until}.",
        "date_published": when.isoformat(),
        "date_modified": when.isoformat(),
        "tags": ["maintenance", "in progress" if item.active else "scheduled"],
    }


# A page of thousands of services takes seconds to render: when it expires, one request
# renders it again while the others are served the previous one for up to this long.
STALE_SECONDS = 300


def _mark_viewed() -> None:
    try:
        cache.add(STATUS_PAGE_VIEWED_KEY, 1, STATUS_PAGE_VIEWED_SECONDS)
    except Exception:
        logger.warning("status page: cache unavailable", exc_info=True)


def status_page_refresh() -> int:
    """Render the status page into the cache now (beat runs it every STATUS_PAGE_REFRESH_SECONDS
    on a worker, so the web processes never render a page of thousands of services while
    serving: a render holds its process' GIL for seconds), if it was viewed in the last
    STATUS_PAGE_VIEWED_SECONDS. Returns the cached body's size (0: not rendered)."""
    if cache.get(STATUS_PAGE_VIEWED_KEY) is None:
        return 0
    body = _compressed_status_page()
    cache.set(
        STATUS_PAGE_CACHE_KEY,
        (time.time() + STATUS_PAGE_CACHE_SECONDS, body),
        STATUS_PAGE_CACHE_SECONDS + STALE_SECONDS,
    )
    return len(body)


def cached_renewed_once(key: str, seconds: int, build: Callable[[], Any]) -> Any:
    """As cached(), but an expired value is renewed by one request (it holds a lock) while
    the others meanwhile get the expired one, for at most STALE_SECONDS: no pile of identical
    renders at each expiry. The cache holds (time it expires, value)."""
    now = time.time()
    try:
        entry = cache.get(key)
        if entry is not None and (entry[0] > now or not cache.add(f"{key}:renewing", 1, 60)):
            return entry[1]
    except Exception:
        logger.warning("status page: cache unavailable", exc_info=True)
        return build()
    value = build()
    try:
        cache.set(key, (now + seconds, value), seconds + STALE_SECONDS)
        cache.delete(f"{key}:renewing")
    except Exception:
        logger.warning("status page: cache unavailable", exc_info=True)
    return value


@reader_required
def status_service(request: HttpRequest, token: str) -> HttpResponse:
    """A status page row's link, by the row's opaque token: a signed-in reader goes on to the
    service's page; a visitor is sent to the login page first (with this URL, which names no
    service, to come back to)."""
    service_id = public.public_service_for_token(token)
    if service_id is None:
        raise Http404("No public service has this link.")
    return redirect("web:service", service_id=service_id)


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

    return _svg_response(cached(key, BADGE_CACHE_SECONDS, build, what="status page"))
