"""The operator dashboard: who may see it, what it counts and lists, and what it costs."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.choices import Role
from incidents import actions as incident_actions
from incidents.models import Incident
from noc import dashboard
from noc.charts import SVG_NS
from noc.timeseries import partitions
from noc.timeseries.rollups import ROLLUPS, is_native
from services.choices import LATENCY_BUCKETS_MS
from services.models import Service
from services.timeseries import ROLLUP_HOURLY_TABLE, ROLLUP_TABLE
from slos import actions as slo_actions
from slos.models import SLO

# --- helpers shared with test_status_page.py ----------------------------------------------------

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
    match = re.search(rf'data-{attribute}="{value}"><span class="n">(\d+)</span>', html)
    assert match, f"no {attribute} counter for {value}"
    return int(match.group(1))


def row(html: str, attribute: str, value: str) -> str:
    match = re.search(rf'<tr data-{attribute}="{value}">.*?</tr>', html, flags=re.DOTALL)
    assert match, f"no row for {attribute} {value}"
    return match.group(0)


@pytest.fixture
def viewer_client(client, viewer_user):
    client.force_login(viewer_user)
    return client


# --- access -------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/"


@pytest.mark.parametrize("role", Role.values)
def test_every_role_sees_the_dashboard_which_refreshes_itself(client, make_user, role):
    client.force_login(make_user(role))
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<meta http-equiv="refresh" content="30">' in html
    assert "No services yet." in html
    assert "No active incident." in html


# --- contents -----------------------------------------------------------------------------------


def test_the_header_counts_services_by_status(viewer_client, make_service):
    up, down, degraded = make_service(), make_service(), make_service()
    paused = make_service(enabled=False)
    set_status(up, "up")
    set_status(down, "down")
    set_status(degraded, "degraded")
    html = viewer_client.get("/").content.decode()
    assert counter(html, "status", "up") == 1
    assert counter(html, "status", "down") == 1
    assert counter(html, "status", "degraded") == 1
    assert counter(html, "status", "paused") == 1
    assert counter(html, "status", "maintenance") == 0
    # Problems are listed first.
    assert html.index(f'data-service="{down.id}"') < html.index(f'data-service="{up.id}"')
    assert 'class="badge badge-paused"' in row(html, "service", paused.id)


def test_a_service_row_shows_its_last_check(viewer_client, make_service):
    service = make_service(name="Checkout")
    set_status(
        service, "up", last_checked_at=timezone.now() - timedelta(minutes=3),
        last_response_time_ms=123.4,
    )  # fmt: skip
    line = row(viewer_client.get("/").content.decode(), "service", service.id)
    assert "Checkout" in line
    assert "123 ms" in line
    assert "3\xa0minutes ago" in line
    assert "—" in line  # no uptime: no checks in the rollup


def test_active_incidents_are_listed_by_severity_and_link_to_the_admin(
    viewer_client, make_service, operator_user
):
    low = incident_actions.incident_create_manual(
        actor=None, service=make_service(), title="Slow <search>", severity="low"
    )
    critical = incident_actions.incident_create_manual(
        actor=None, service=make_service(), title="Checkout down", severity="critical"
    )
    incident_actions.incident_acknowledge(incident=critical, actor=operator_user)
    resolved = incident_actions.incident_create_manual(
        actor=None, service=make_service(), title="Old news", severity="high"
    )
    incident_actions.incident_resolve(incident=resolved, actor=operator_user)

    html = viewer_client.get("/").content.decode()
    assert counter(html, "severity", "critical") == 1
    assert counter(html, "severity", "low") == 1
    assert counter(html, "severity", "high") == 0
    assert f'href="/admin/incidents/incident/{critical.pk}/change/"' in html
    assert "Slow &lt;search&gt;" in html
    assert "Old news" not in html
    assert "yes, by oscar" in row(html, "incident", str(critical.pk))
    assert "<strong>no</strong>" in row(html, "incident", str(low.pk))
    assert html.index(f'data-incident="{critical.pk}"') < html.index(f'data-incident="{low.pk}"')


def make_slo(service, slo_id: str, **cached) -> SLO:
    slo = slo_actions.slo_create(
        actor=None, id=slo_id, name=f"{slo_id} availability", service=service,
        sli_type="availability", target="99.9", window="30d",
    )  # fmt: skip
    # The cached budget fields are written by slos_evaluate; tests set them directly.
    SLO.objects.filter(pk=slo.pk).update(**cached)
    return slo


def test_slos_at_medium_risk_or_worse_are_listed_with_their_budget(viewer_client, make_service):
    service = make_service()
    make_slo(
        service, "burning", violation_risk="high", budget_remaining_percent=20.0, burn_rate=7.5
    )
    make_slo(service, "fine", violation_risk="low", budget_remaining_percent=70.0, burn_rate=0.2)
    html = viewer_client.get("/").content.decode()
    line = row(html, "slo", "burning")
    assert "7.5×" in line
    assert "badge-high" in line
    (bar,) = svgs(line, "budget-bar")
    assert bar.find(f"{{{SVG_NS}}}title").text == "Error budget: 20.0 % left"
    assert 'data-slo="fine"' not in html
    assert re.search(r'data-slos-at-risk><span class="n">1</span>', html)


def test_mtta_and_mttr_of_the_last_30_days(viewer_client, make_service, operator_user):
    incident = incident_actions.incident_create_manual(
        actor=None, service=make_service(), title="Outage", severity="high"
    )
    incident_actions.incident_acknowledge(incident=incident, actor=operator_user)
    incident_actions.incident_resolve(incident=incident, actor=operator_user)
    detected = timezone.now() - timedelta(hours=3)
    Incident.objects.filter(pk=incident.pk).update(
        impact_started_at=detected - timedelta(minutes=5),
        detected_at=detected,
        acknowledged_at=detected + timedelta(minutes=12),
        resolved_at=detected + timedelta(hours=1),
    )
    html = viewer_client.get("/").content.decode()
    assert re.search(r'<span class="n">12 min</span> MTTA', html)
    assert re.search(r'<span class="n">1 h 05 min</span> MTTR', html)


def test_without_incidents_mtta_and_mttr_are_blank(viewer_client):
    html = viewer_client.get("/").content.decode()
    assert re.search(r'<span class="n">—</span> MTTA', html)


def test_sparklines_uptime_and_checks_per_hour_come_from_the_rollups(
    viewer_client, make_service, native_rollups
):
    web, quiet = make_service(id="web"), make_service(id="quiet")
    now = timezone.now()
    ensure_rollup_partitions(now - timedelta(days=2), now + timedelta(days=1))
    hours = dashboard.hour_starts(now)
    for hour, rt in zip(hours[-3:], (100.0, 300.0, 200.0), strict=True):
        insert_rollup(ROLLUP_HOURLY_TABLE.table, "web", hour, up=58, down=2, rt_ms=rt)
    minute = now.replace(second=0, microsecond=0) - timedelta(minutes=5)
    insert_rollup(ROLLUP_TABLE.table, "web", minute, up=9, down=1, rt_ms=100.0)
    # Outside the 24 hours: neither in the uptime nor in the charts.
    insert_rollup(ROLLUP_TABLE.table, "web", now - timedelta(hours=30), down=50)
    insert_rollup(ROLLUP_HOURLY_TABLE.table, "web", hours[0] - timedelta(hours=1), down=50)

    html = viewer_client.get("/").content.decode()
    line = row(html, "service", web.id)
    assert "90.00 %" in line
    (spark,) = svgs(line, "sparkline")
    points = spark.find(f"{{{SVG_NS}}}polyline").get("points").split()
    assert len(points) == 3
    assert min(float(p.split(",")[1]) for p in points) == pytest.approx(2.0)  # 300 ms on top
    (empty,) = svgs(row(html, "service", quiet.id), "sparkline")
    assert "no data" in "".join(empty.itertext())

    (chart,) = svgs(html, "stacked-bars")
    tooltips = [t.text for t in chart.iter(f"{{{SVG_NS}}}title")]
    current = f"{hours[-1].astimezone(UTC):%H}:00"
    assert f"{current}: 58 up, 0 degraded, 2 down" in tooltips
    bars = chart.findall(f"{{{SVG_NS}}}g")
    assert len(bars) == 24
    assert sum(1 for bar in bars if bar.find(f"{{{SVG_NS}}}rect") is not None) == 3


# --- cost ---------------------------------------------------------------------------------------


def populate(make_service, services: int, incidents: int, slos: int) -> None:
    made = [make_service() for _ in range(services)]
    for service in made[:incidents]:
        incident_actions.incident_create_manual(
            actor=None, service=service, title=f"{service.name} down", severity="high"
        )
    for service in made[:slos]:
        make_slo(service, f"slo-{service.id}", violation_risk="critical", burn_rate=20.0)


def test_the_dashboard_costs_the_same_queries_for_5_or_50_services(
    viewer_client, make_service, django_assert_max_num_queries
):
    populate(make_service, services=5, incidents=1, slos=1)
    viewer_client.get("/")  # warm: the session and content-type caches
    with CaptureQueriesContext(connection) as small:
        assert viewer_client.get("/").status_code == 200
    # Session, user, services, their hours, 24 h uptime, incidents, SLOs, incident statistics.
    assert len(small) <= 8

    populate(make_service, services=45, incidents=4, slos=4)
    with django_assert_max_num_queries(len(small)):
        response = viewer_client.get("/")
    assert len(response.context["board"].services) == 50
    assert len(response.context["board"].active_incidents) == 5
