"""Helpers of the console's tests: rows written straight into the rollups, SVGs and rows read
back out of a page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest
from django.db import connection

from noc.timeseries import partitions
from noc.timeseries.rollups import ROLLUPS, is_native
from services.choices import LATENCY_BUCKETS_MS
from services.models import Service
from services.timeseries import ROLLUP_HOURLY_TABLE, ROLLUP_TABLE
from slos import actions as slo_actions
from slos.models import SLO
from web.charts import SVG_NS

_LE = [f"le_{ms}" for ms in LATENCY_BUCKETS_MS]


def rollups_are_native() -> bool:
    return is_native(ROLLUPS["services_checkrollup"])


@pytest.fixture
def native_rollups(db):
    """Rows go straight into the rollup tables, which only the native backend has (TimescaleDB
    makes them continuous aggregates, read-only)."""
    if not rollups_are_native():
        pytest.skip("rollups are TimescaleDB continuous aggregates: rows cannot be inserted")


def insert_rollup(
    table: str,
    service_id: str,
    bucket: datetime,
    *,
    up: int = 0,
    degraded: int = 0,
    down: int = 0,
    maintenance: int = 0,
    rt_ms: float | None = None,
) -> None:
    """One row of the minute or hourly rollup, every check answering in `rt_ms`."""
    rt_count = up + degraded + down if rt_ms is not None else 0
    values: dict[str, object] = {
        "service_id": service_id,
        "bucket": bucket,
        "n_up": up,
        "n_degraded": degraded,
        "n_down": down,
        "n_maintenance": maintenance,
        "rt_count": rt_count,
        "rt_sum": rt_ms * rt_count if rt_ms is not None else None,
        "rt_min": rt_ms,
        "rt_max": rt_ms,
        **{le: rt_count if rt_ms is not None and rt_ms <= ms else 0
           for le, ms in zip(_LE, LATENCY_BUCKETS_MS, strict=True)},
    }  # fmt: skip
    if table == ROLLUP_HOURLY_TABLE.table:
        counted = up + degraded + down
        values["m_total"] = 60 if counted else 0
        values["m_good_avail"] = max(60 - down, 0) if counted else 0
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values()))


def ensure_rollup_partitions(start: datetime, end: datetime) -> None:
    for spec in (ROLLUP_TABLE, ROLLUP_HOURLY_TABLE):
        partitions.ensure(spec, start, end)


def svgs(html: str, css_class: str) -> list[ET.Element]:
    """The inline SVGs of one class in a page, parsed: the page is HTML, each chart is XML."""
    pattern = rf'<svg xmlns="{SVG_NS}" class="{css_class}".*?</svg>'
    return [ET.fromstring(m) for m in re.findall(pattern, html, flags=re.DOTALL)]


def set_status(service: Service, status: str, **fields) -> None:
    # The last-check state is written by check_results_record; tests set it directly.
    Service.objects.filter(pk=service.pk).update(status=status, **fields)


def counter(html: str, attribute: str, value: str) -> int:
    match = re.search(rf'data-{attribute}="{value}"[^>]*><span class="n">(\d+)</span>', html)
    assert match, f"no {attribute} counter for {value}"
    return int(match.group(1))


def row(html: str, attribute: str, value: str) -> str:
    match = re.search(rf'<tr data-{attribute}="{value}">.*?</tr>', html, flags=re.DOTALL)
    assert match, f"no row for {attribute} {value}"
    return match.group(0)


def make_slo(service, slo_id: str, **cached) -> SLO:
    slo = slo_actions.slo_create(
        actor=None, id=slo_id, name=f"{slo_id} availability", service=service,
        sli_type="availability", target="99.9", window="30d",
    )  # fmt: skip
    # The cached budget fields are written by slos_evaluate; tests set them directly.
    SLO.objects.filter(pk=slo.pk).update(**cached)
    return slo
