"""A service's page (/services/<id>/) and the actions it offers: check now (operator) and
pause/resume (admin), each a CSRF-protected POST through services.actions, as the API does."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.choices import Role
from noc.formatting import ms_label, optional_percent
from services import actions
from services.choices import CheckKind
from services.execution import check_now
from services.models import Service
from web import charts
from web.access import SERVICE_ACTIONS, may, reader_required, role_required
from web.queries import service as queries
from web.queries.public import public_services


@reader_required
def service_detail(request: HttpRequest, service_id: str) -> HttpResponse:
    service = get_object_or_404(Service, pk=service_id)
    range_key = request.GET.get("range", queries.DEFAULT_RANGE)
    if range_key not in queries.RANGES:
        range_key = queries.DEFAULT_RANGE
    page = queries.service_page(service, range_key=range_key)
    return render(request, "web/service.html", service_context(request, page))


def service_context(request: HttpRequest, page: queries.ServicePage) -> dict[str, Any]:
    service = page.service
    user = request.user
    return {
        "page": page,
        "service": service,
        "heartbeat": charts.heartbeat_bar(
            [_beat(r) for r in page.results],
            label=f"{service.name}: last {len(page.results)} checks",
            slots=queries.HEARTBEATS,
        ),
        "response_chart": _response_chart(page.series, service.name),
        "ranges": [(r.key, r.label) for r in queries.RANGES.values()],
        "bucket_label": _duration(page.series.range.bucket),
        "target": target_of(service),
        "uptimes": [(u.window, optional_percent(u.percent), u.total) for u in page.uptimes],
        "may_check_now": may(user, SERVICE_ACTIONS["check_now"]) and service.kind != CheckKind.PUSH,
        "may_pause": may(user, SERVICE_ACTIONS["disable"]),
        "may_edit": may(user, Role.ADMIN),
        "is_public": public_services().filter(pk=service.pk).exists(),
    }


def target_of(service: Service) -> str:
    """What is checked, as people read it; credentials in a URL are left out."""
    if service.kind == CheckKind.HTTP:
        parts = urlsplit(service.url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    if service.kind == CheckKind.DNS:
        return f"{service.dns_name} {service.dns_record_type}"
    if service.kind == CheckKind.PUSH:
        return reverse("ping", kwargs={"token": service.ping_token})
    return (
        f"{service.host}:{service.port or 443}"
        if service.kind == CheckKind.TLS
        else (f"{service.host}:{service.port}")
    )


def _beat(result) -> charts.Beat:
    status = "maintenance" if result.in_maintenance else result.status
    parts = [f"{result.time:%Y-%m-%d %H:%M:%S} UTC: {status}"]
    if result.status_code:
        parts.append(str(result.status_code))
    if result.response_time_ms is not None:
        parts.append(ms_label(result.response_time_ms))
    text = ", ".join(parts)
    return charts.Beat(result.time, status, f"{text} — {result.error}" if result.error else text)


def _response_chart(series: queries.ResponseSeries, name: str) -> str:
    chart = series.range
    return charts.line_chart(
        [b.start for b in series.buckets],
        [
            charts.Series("p50", [b.p50_ms for b in series.buckets], "#3b6fd8", "series-p50"),
            charts.Series("p95", [b.p95_ms for b in series.buckets], "#e8730c", "series-p95"),
        ],
        label=f"{name}: response time p50 and p95 per {_duration(chart.bucket)}, last "
        f"{chart.label}",
        start=series.start,
        end=series.end,
        unit=" ms",
        time_format=chart.time_format,
    )


def _duration(delta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"


# --- actions ----------------------------------------------------------------------------------


def _back(service: Service) -> HttpResponse:
    return redirect(reverse("web:service", args=[service.pk]))


@require_POST
@role_required(SERVICE_ACTIONS["check_now"])
def service_check_now(request: HttpRequest, service_id: str) -> HttpResponse:
    """Run the check at once and record it (POST /api/services/<id>/check-now/ does the same)."""
    service = get_object_or_404(Service, pk=service_id)
    if service.kind == CheckKind.PUSH:
        messages.error(request, "A push service is checked by its pings; it cannot be checked now.")
        return _back(service)
    actions.audit_check_now(actor=request.user, service=service)
    recorded = check_now(service)
    if recorded is None:
        messages.warning(request, "A result was already recorded for this moment; try again.")
    else:
        result = recorded.result
        text = f"Checked: {result.status}"
        if result.response_time_ms is not None:
            text += f" in {ms_label(result.response_time_ms)}"
        if result.error:
            text += f" — {result.error}"
        level = messages.SUCCESS if result.status != "down" else messages.WARNING
        messages.add_message(request, level, text)
    return _back(service)


def _set_enabled(request: HttpRequest, service_id: str, enabled: bool) -> HttpResponse:
    service = get_object_or_404(Service, pk=service_id)
    try:
        actions.service_set_enabled(actor=request.user, service=service, enabled=enabled)
    except ValidationError as refused:
        messages.error(request, "; ".join(refused.messages))
    else:
        messages.success(request, "Checks resumed." if enabled else "Checks paused.")
    return _back(service)


@require_POST
@role_required(SERVICE_ACTIONS["enable"])
def service_resume(request: HttpRequest, service_id: str) -> HttpResponse:
    return _set_enabled(request, service_id, True)


@require_POST
@role_required(SERVICE_ACTIONS["disable"])
def service_pause(request: HttpRequest, service_id: str) -> HttpResponse:
    return _set_enabled(request, service_id, False)
