"""GET /metrics: the fleet's state for Prometheus, served with `prometheus_client`.

A custom collector (`NocCollector`) runs the same set-based reads at every scrape: services,
24 h uptime (cached for a minute, the rollup refresh period), certificates, check lag and
pending claims, the families other apps register (`EXTRA_FAMILIES`) and the process. Each
scrape costs a fixed number of queries whatever the fleet size. The exposition and content
negotiation are prometheus_client's: the text format 0.0.4 by default, OpenMetrics for a
scraper that asks for `application/openmetrics-text`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator

import psutil
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from noc.metrics_access import metrics_access
from services import queries
from services.choices import ServiceStatus
from services.models import Service

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UPTIME_WINDOW = "24h"
UPTIME_CACHE_SECONDS = 60
Sample = tuple[dict[str, str], float]


# --- the text format (prometheus_client writes it; these remain for callers and tests) ----------


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def format_labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label(str(v))}"' for k, v in labels.items()) + "}"


class Exposition:
    """Where each family function writes: `family(name, kind, help, samples)` becomes one
    prometheus_client `Metric` (a counter's family name without its `_total`, as the client
    wants it)."""

    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        family_name = name.removesuffix("_total") if kind == "counter" else name
        metric = Metric(family_name, help_text, kind)
        for labels, value in samples:
            metric.add_sample(name, {k: str(v) for k, v in labels.items()}, float(value))
        self.metrics.append(metric)


# --- the metrics -------------------------------------------------------------------------------

UP_VALUE = {ServiceStatus.UP: 1, ServiceStatus.DEGRADED: 1, ServiceStatus.DOWN: 0}


def service_families(out: Exposition) -> set[str]:
    """Gauges from each service's row; returns the ids, so the other families skip leftovers
    of deleted services."""
    rows = list(
        Service.objects.order_by("id").values_list("id", "kind", "status", "last_response_time_ms")
    )
    out.family(
        "noc_service_up",
        "gauge",
        "1 when the last check was up or degraded, 0 when down, NaN without a verdict "
        "(unknown, paused, maintenance).",
        (({"service": sid, "kind": kind}, UP_VALUE.get(st, math.nan)) for sid, kind, st, _ in rows),
    )
    out.family(
        "noc_service_status",
        "gauge",
        "The service's current status, one-hot.",
        (
            ({"service": sid, "status": status}, int(st == status))
            for sid, _, st, _ in rows
            for status in ServiceStatus.values
        ),
    )
    out.family(
        "noc_service_response_time_ms",
        "gauge",
        "Response time of the last check in milliseconds.",
        (({"service": sid}, rt) for sid, _, _, rt in rows if rt is not None),
    )
    return {row[0] for row in rows}


def uptime_family(out: Exposition, service_ids: set[str]) -> None:
    ratios = _cached_uptime_ratios()
    out.family(
        "noc_service_uptime_ratio",
        "gauge",
        "Share of checks up or degraded over the window, maintenance excluded (0-1).",
        (
            ({"service": sid, "window": UPTIME_WINDOW}, ratio)
            for sid, ratio in sorted(ratios.items())
            if sid in service_ids
        ),
    )


def scheduler_families(out: Exposition) -> None:
    out.family(
        "noc_service_cert_days_remaining",
        "gauge",
        "Days until the TLS certificate seen by the last check expires.",
        (({"service": sid}, days) for sid, days in sorted(queries.cert_days_remaining().items())),
    )
    out.family(
        "noc_check_lag_seconds",
        "gauge",
        "How long the oldest due check has been waiting for dispatch (0 when none is late).",
        [({}, queries.check_lag_seconds())],
    )
    out.family(
        "noc_check_claims_pending",
        "gauge",
        "Checks handed to workers and not recorded yet.",
        [({}, queries.claims_pending())],
    )


def process_families(out: Exposition) -> None:
    """The standard process_* metrics of Prometheus client libraries, for this web worker."""
    process = psutil.Process()
    with process.oneshot():
        memory, cpu, started = process.memory_info(), process.cpu_times(), process.create_time()
    for name, kind, help_text, number in (
        ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", memory.rss),
        ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", memory.vms),
        ("process_cpu_seconds_total", "counter", "User and system CPU time in seconds.",
         cpu.user + cpu.system),
        ("process_start_time_seconds", "gauge", "Start time since the epoch in seconds.", started),
    ):  # fmt: skip
        out.family(name, kind, help_text, [({}, number)])


# Families other apps add (incidents, SLOs): they depend on services, not the other way.
EXTRA_FAMILIES: list[Callable[[Exposition], None]] = []


def collect_families() -> list[Metric]:
    started = time.perf_counter()
    out = Exposition()
    service_ids = service_families(out)
    uptime_family(out, service_ids)
    scheduler_families(out)
    for family in EXTRA_FAMILIES:
        family(out)
    process_families(out)
    out.family(
        "noc_metrics_scrape_duration_seconds",
        "gauge",
        "Time spent computing this page.",
        [({}, round(time.perf_counter() - started, 6))],
    )
    return out.metrics


class NocCollector:
    """prometheus_client's custom collector over the project's reads, run at each scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from collect_families()


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(NocCollector())


def render_metrics(accept: str = "") -> tuple[bytes, str]:
    """The exposition for an Accept header: (body, content type)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(REGISTRY), content_type


# --- the view (who may read it: noc/metrics_access.py) -----------------------------------------


@require_GET
@metrics_access
def metrics(request: HttpRequest) -> HttpResponse:
    body, content_type = render_metrics(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)


def _cached_uptime_ratios() -> dict[str, float]:
    """From the cache when it answers; a Redis outage costs the scrape a query, not the page."""
    key = f"services:metrics:uptime:{UPTIME_WINDOW}"
    try:
        ratios = cache.get(key)
    except Exception:
        logger.warning("metrics: cache unavailable; uptime read from PostgreSQL", exc_info=True)
        return queries.uptime_ratios(UPTIME_WINDOW)
    if ratios is None:
        ratios = queries.uptime_ratios(UPTIME_WINDOW)
        with contextlib.suppress(Exception):
            cache.set(key, ratios, UPTIME_CACHE_SECONDS)
    return ratios
