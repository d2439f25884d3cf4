"""The operator dashboard: who may see it, what it counts and lists, filters, pages, live
parts, and what it costs."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.choices import Role
from incidents import actions as incident_actions
from incidents.models import Incident
from noc.cachekeys import delete_prefixed
from noc.formatting import optional_percent
from services.timeseries import ROLLUP_HOURLY_TABLE
from web.charts import SVG_NS
from web.queries import dashboard
from web.queries.rollups import hour_starts
from web.tests.helpers import (
    counter,
    ensure_rollup_partitions,
    insert_rollup,
    make_slo,
    row,
    set_status,
    svgs,
)

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
    # Live parts through the project's own script; a full reload without JavaScript.
    assert 'data-live-url="?page=1&amp;parts=1" data-live-seconds="15"' in html
    assert '<script src="/static/web/console.js" defer></script>' in html
    assert '<noscript><meta http-equiv="refresh" content="15"></noscript>' in html
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


def test_a_service_row_shows_its_last_check_and_links_to_its_page(viewer_client, make_service):
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
    assert f'<a href="/services/{service.id}/">Checkout</a>' in line


def test_active_incidents_are_listed_by_severity_and_link_to_their_page(
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
    assert f'href="/incidents/{critical.pk}/"' in html
    assert "Slow &lt;search&gt;" in html
    assert "Old news" not in html
    assert "yes, by oscar" in row(html, "incident", str(critical.pk))
    assert "<strong>no</strong>" in row(html, "incident", str(low.pk))
    assert html.index(f'data-incident="{critical.pk}"') < html.index(f'data-incident="{low.pk}"')


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
    hours = hour_starts(now)
    for hour, rt in zip(hours[-3:], (100.0, 300.0, 200.0), strict=True):
        insert_rollup(ROLLUP_HOURLY_TABLE.table, "web", hour, up=58, down=2, rt_ms=rt)
    # Outside the 24 hours: neither in the uptime nor in the charts.
    insert_rollup(ROLLUP_HOURLY_TABLE.table, "web", hours[0] - timedelta(hours=1), down=50)

    html = viewer_client.get("/").content.decode()
    line = row(html, "service", web.id)
    assert "96.66 %" in line  # 174 of 180 checks in the three hours
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


def chart_tooltips(html: str) -> list[str]:
    (chart,) = svgs(html, "stacked-bars")
    return [t.text for t in chart.iter(f"{{{SVG_NS}}}title")]


def test_rollup_figures_are_kept_a_minute_the_services_status_is_read_each_time(
    viewer_client, make_service, native_rollups
):
    web = make_service(id="web")
    set_status(web, "up")
    now = timezone.now()
    ensure_rollup_partitions(now - timedelta(days=2), now + timedelta(days=1))
    hours = hour_starts(now)
    insert_rollup(ROLLUP_HOURLY_TABLE.table, "web", hours[-2], up=60, rt_ms=100.0)
    label = f"{hours[-2].astimezone(UTC):%H}:00"
    html = viewer_client.get("/").content.decode()
    assert f"{label}: 60 up, 0 degraded, 0 down" in chart_tooltips(html)
    assert f">{optional_percent(100.0)}</td>" in row(html, "service", web.id)

    insert_rollup(ROLLUP_HOURLY_TABLE.table, "web", hours[-3], down=60, rt_ms=300.0)
    set_status(web, "down")
    html = viewer_client.get("/").content.decode()
    # The chart, the uptime and the sparkline are the kept ones (dashboard.KEPT_SECONDS) ...
    earlier = f"{hours[-3].astimezone(UTC):%H}:00"
    assert f"{earlier}: 0 up, 0 degraded, 60 down" not in chart_tooltips(html)
    line = row(html, "service", web.id)
    assert f">{optional_percent(100.0)}</td>" in line
    (spark,) = svgs(line, "sparkline")
    assert "(min 100 ms, max 100 ms)" in spark.find(f"{{{SVG_NS}}}title").text  # no 300 ms hour
    # ... the status is not.
    assert 'class="badge badge-down"' in line
    assert counter(html, "status", "down") == 1

    # A new hour is a new window: read again at once.
    later = dashboard.operator_dashboard(now=now + timedelta(hours=1))
    assert [h.down for h in later.checks_per_hour][-4:] == [60, 0, 0, 0]
    assert later.services[0].uptime_24h_percent == 50.0
    # Each filter's figures are kept apart.
    edge = dashboard.operator_dashboard(filters=dashboard.Filters(tag="edge"), now=now)
    assert sum(h.up + h.down for h in edge.checks_per_hour) == 0


def test_without_its_cache_the_dashboard_is_read_in_full(viewer_client, make_service, settings):
    set_status(make_service(name="Checkout"), "down")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens: refused at once
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get("/")
    assert response.status_code == 200
    assert counter(response.content.decode(), "status", "down") == 1
    assert any("services_checkrollup_hourly" in q["sql"] for q in queries.captured_queries)


def test_names_and_titles_in_the_tables_are_escaped(viewer_client, make_service):
    service = make_service(name="<b>Checkout</b> & co")
    set_status(service, "down")
    incident_actions.incident_create_manual(
        actor=None, service=service, title='"Quoted" <title>', severity="high"
    )
    make_slo(service, "escaped", violation_risk="high", budget_remaining_percent=10.0)
    html = viewer_client.get("/").content.decode()
    assert "<b>Checkout" not in html
    escaped = "&lt;b&gt;Checkout&lt;/b&gt; &amp; co"
    for table in ("service", "incident", "slo"):
        assert re.search(rf'<tr data-{table}="[^"]+">.*?>{escaped}</a>', html, flags=re.DOTALL)
    assert "&quot;Quoted&quot; &lt;title&gt;" in row(
        html, "incident", str(Incident.objects.get().pk)
    )


# --- cost ---------------------------------------------------------------------------------------


def populate(make_service, services: int, incidents: int, slos: int) -> None:
    made = [make_service() for _ in range(services)]
    for service in made[:incidents]:
        incident_actions.incident_create_manual(
            actor=None, service=service, title=f"{service.name} down", severity="high"
        )
    for service in made[:slos]:
        make_slo(service, f"slo-{service.id}", violation_risk="critical", burn_rate=20.0)


@pytest.mark.parametrize("query", ["", "?tag=edge&critical=yes&status=down", "?parts=1"])
def test_the_dashboard_costs_the_same_queries_for_5_or_150_services(
    viewer_client, make_service, django_assert_max_num_queries, query
):
    populate(make_service, services=5, incidents=1, slos=1)
    viewer_client.get("/" + query)  # warm: the session and content-type caches
    delete_prefixed()  # and nothing of the dashboard kept: every query counted
    with CaptureQueriesContext(connection) as small:
        assert viewer_client.get("/" + query).status_code == 200
    # Session, user, tags, status counts, the page of services, its hours, the fleet's hours,
    # incidents, SLOs at risk, incident statistics, alerts firing, collectors in error.
    assert len(small) <= 12

    populate(make_service, services=145, incidents=20, slos=30)
    delete_prefixed()
    with django_assert_max_num_queries(len(small)):
        response = viewer_client.get("/" + query)
    if not query:
        board = response.context["board"]
        assert len(board.services) == 100  # one page
        assert board.services_matching == 150
        assert (len(board.active_incidents), board.active_incidents_total) == (21, 21)
        assert (len(board.slos_at_risk), board.slos_at_risk_total) == (25, 31)  # TABLE_ROWS


# --- filters, pages, live parts -----------------------------------------------------------------


def test_filters_narrow_the_counts_and_the_table(viewer_client, make_service):
    edge_down = make_service(name="Edge down", tags=["edge"], critical=True)
    edge_up = make_service(name="Edge up", tags=["edge"])
    core_down = make_service(name="Core down", tags=["core"], critical=True)
    set_status(edge_down, "down")
    set_status(edge_up, "up")
    set_status(core_down, "down")
    incident_actions.incident_create_manual(
        actor=None, service=core_down, title="Core is down", severity="high"
    )

    html = viewer_client.get("/?tag=edge").content.decode()
    assert counter(html, "status", "down") == 1
    assert counter(html, "status", "up") == 1
    assert f'data-service="{core_down.id}"' not in html
    assert "Core is down" not in html  # incidents follow the tag too
    assert '<option value="edge" selected>edge</option>' in html

    html = viewer_client.get("/?tag=edge&status=down").content.decode()
    assert counter(html, "status", "up") == 1  # counts keep every status of the scope
    assert f'data-service="{edge_down.id}"' in html
    assert f'data-service="{edge_up.id}"' not in html

    html = viewer_client.get("/?critical=yes").content.decode()
    assert f'data-service="{edge_up.id}"' not in html
    assert "Core is down" in html

    # Unknown values are ignored, never an error.
    response = viewer_client.get("/?status=exploded&critical=maybe&page=x")
    assert response.status_code == 200
    assert response.context["board"].services_matching == 3


def test_a_status_count_links_to_the_table_filtered_by_it(viewer_client, make_service):
    set_status(make_service(tags=["edge"]), "down")
    html = viewer_client.get("/?tag=edge").content.decode()
    assert 'href="?tag=edge&amp;status=down"' in html


def test_services_come_in_pages_of_100_problems_first(viewer_client, make_service):
    services = [make_service(name=f"svc {i:03d}") for i in range(130)]
    for service in services:
        set_status(service, "up")
    set_status(services[129], "down")
    first = viewer_client.get("/").content.decode()
    assert first.index(f'data-service="{services[129].id}"') < first.index(
        f'data-service="{services[0].id}"'
    )
    assert 'href="?page=2" rel="next"' in first
    second = viewer_client.get("/?page=2").content.decode()
    assert second.count("<tr data-service=") == 30
    assert 'href="?page=1" rel="prev"' in second
    # A page past the end shows the last one.
    assert viewer_client.get("/?page=99").context["board"].filters.page == 99
    assert viewer_client.get("/?page=99").content.decode().count("<tr data-service=") == 30


def test_the_live_parts_are_the_page_s_parts_as_json(viewer_client, make_service):
    service = make_service(name="Checkout", tags=["shop"])
    set_status(service, "down")
    response = viewer_client.get("/?tag=shop&parts=1")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    parts = response.json()["parts"]
    assert set(parts) == {
        "counts", "checks", "services", "incidents", "slos", "sections", "updated"
    }  # fmt: skip
    assert counter(parts["counts"], "status", "down") == 1
    assert f'href="/services/{service.id}/"' in parts["services"]
    page = viewer_client.get("/?tag=shop").content.decode()
    assert 'data-live-url="?tag=shop&amp;page=1&amp;parts=1"' in page
    for name in parts:
        assert f'data-live="{name}"' in page


def test_the_live_parts_of_a_signed_out_visitor_are_a_redirect(client, db):
    response = client.get("/?parts=1")
    assert response.status_code == 302  # console.js reloads the page: the login form
