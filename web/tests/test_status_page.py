"""The public status page: open to all, public services only, daily uptime cells, incidents
in public words only, nothing internal, cached, a fixed number of queries."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents import actions as incident_actions
from incidents.choices import IncidentSource
from incidents.models import Incident
from services.models import Service
from services.timeseries import ROLLUP_HOURLY_TABLE
from web.charts import SVG_NS
from web.queries import public
from web.tests.helpers import ensure_rollup_partitions, insert_rollup, set_status, svgs
from web.views import status as views


@pytest.fixture(autouse=True)
def _private_cache(private_cache):
    """Every test here reads a page the view caches: a cache of this process only."""


def page(client) -> str:
    response = client.get("/status/")
    assert response.status_code == 200
    return response.content.decode()


def overall(html: str) -> str:
    match = re.search(r'<div class="overall overall-(\w+)" id="overall">([^<]+)</div>', html)
    assert match
    return match.group(2)


# --- access and contents ------------------------------------------------------------------------


def test_anyone_may_read_the_status_page(client, make_service):
    make_service(name="Site")
    response = client.get("/status/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=30"
    html = response.content.decode()
    assert overall(html) == "All systems operational"
    assert '<meta http-equiv="refresh" content="60">' in html
    assert 'type="application/feed+json"' in html


def test_the_page_is_off_when_nothing_is_public(client, make_service):
    make_service(name="Batch", tags=["internal"])
    assert client.get("/status/").status_code == 404
    assert client.get("/status/feed.json").status_code == 404


def test_signed_in_users_read_the_same_page(client, make_user, make_service):
    make_service(name="Site")
    client.force_login(make_user("viewer", username="quinlan"))
    assert "quinlan" not in page(client)  # rendered without the request: no user shown


def test_only_enabled_services_not_tagged_internal_are_shown(client, make_service):
    make_service(name="Public API", tags=["edge"])
    make_service(name="Billing worker", tags=["internal", "billing"])
    make_service(name="Retired site", enabled=False)
    html = page(client)
    assert "Public API" in html
    assert "Billing worker" not in html
    assert "Retired site" not in html


def test_no_internal_detail_is_published(client, make_service):
    service = make_service(name="Public API")
    set_status(
        service, "down", last_error="psycopg.OperationalError at 10.0.0.7", last_status_code=503
    )
    incident_actions.incident_create_manual(
        actor=None, service=service, title="API errors after deploy 4711", severity="high",
        summary="runbook: restart pgbouncer on db-7",
    )  # fmt: skip
    html = page(client)
    assert "Public API: service disruption" in html
    for secret in (service.url, "10.0.0.7", "pgbouncer", "503", service.id, "deploy 4711"):
        assert secret not in html


def link_of(html: str, name: str) -> str:
    match = re.search(rf'<a class="service-link" href="([^"]+)">{re.escape(name)}</a>', html)
    assert match, f"no link for {name}"
    return match.group(1)


def test_a_row_links_to_the_service_page_without_naming_the_service_s_id(
    client, make_user, make_service
):
    service = make_service(id="pay-db7-acme", name="Payments")
    link = link_of(page(client), "Payments")
    assert link.startswith("/status/services/") and "pay-db7-acme" not in link

    # A visitor is asked to sign in, and the way back names no service either.
    response = client.get(link)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={link}"

    client.force_login(make_user("viewer"))
    response = client.get(link)
    assert response.status_code == 302
    assert response["Location"] == f"/services/{service.id}/"


def test_a_link_answers_only_for_a_service_on_the_page(client, make_user, make_service):
    make_service(name="Public API")
    hidden = make_service(name="Billing worker", tags=["edge"])
    client.force_login(make_user("viewer"))
    hidden_link = f"/status/services/{public.service_link_token(hidden.id)}/"
    assert client.get(hidden_link).status_code == 302  # public while not tagged internal
    Service.objects.filter(pk=hidden.pk).update(tags=["internal"])
    assert client.get(hidden_link).status_code == 404
    assert client.get("/status/services/0123456789abcdef0123456789abcdef/").status_code == 404


def test_an_incident_opened_by_an_slo_alert_never_shows_its_internal_title(client, make_service):
    """Issue 10, item 12: the title of an SLO alert's incident names the SLO (and whatever its
    owner put in its name); the public reads what the incident means for them."""
    service = make_service(name="Checkout")
    incident_actions.incident_open(
        service=service,
        source=IncidentSource.SLO,
        impact_started_at=timezone.now(),
        title="SLO checkout-p95 (db-7 pool, owner: payments-oncall) is burning its error budget",
        summary="page-1h-5m: 1 h burn 15.2, 5 min burn 18.0",
    )
    html = page(client)
    active = html[html.index('id="active-incidents"') : html.index('id="services"')]
    assert "Checkout: degraded service" in active
    for internal in ("checkout-p95", "db-7", "payments-oncall", "burning", "burn"):
        assert internal not in html


def test_a_resolved_incident_is_listed_in_public_words_too(client, make_service, operator_user):
    service = make_service(name="Mail")
    incident = incident_actions.incident_open(
        service=service, source=IncidentSource.CHECK, impact_started_at=timezone.now(),
        title="smtp-3 refuses STARTTLS (cert rotated by hand)",
    )  # fmt: skip
    incident_actions.incident_resolve(incident=incident, actor=operator_user)
    html = page(client)
    resolved = html[html.index('id="resolved-incidents"') :]
    assert "Mail is unavailable" in resolved
    assert "smtp-3" not in html


@pytest.mark.parametrize(
    ("statuses", "text"),
    [
        ([], "All systems operational"),
        (["up", "up", "maintenance", "unknown"], "All systems operational"),
        (["up", "degraded"], "Degraded performance"),
        (["up", "up", "down"], "Partial outage"),
        (["up", "down"], "Partial outage"),  # half is not more than half
        (["down", "down", "up"], "Major outage"),
        (["down"], "Major outage"),
    ],
)
def test_the_overall_status_follows_how_many_are_down(statuses, text):
    assert public.overall_status(statuses).text == text


def test_a_down_service_shows_in_the_status_line(client, make_service):
    services = [make_service(name=f"Site {i}") for i in range(3)]
    for service in services:
        set_status(service, "up")
    assert overall(page(client)) == "All systems operational"
    set_status(services[0], "down")
    cache.clear()
    html = page(client)
    assert overall(html) == "Partial outage"
    assert 'class="badge badge-down">Down</span>' in html


def test_an_internal_service_down_does_not_count(client, make_service):
    set_status(make_service(name="Site"), "up")
    set_status(make_service(name="Batch", tags=["internal"]), "down")
    assert overall(page(client)) == "All systems operational"


# --- incidents ----------------------------------------------------------------------------------


def test_active_and_recently_resolved_incidents_of_public_services(
    client, make_service, operator_user
):
    public, internal = make_service(name="Site"), make_service(name="Batch", tags=["internal"])
    other = make_service(name="Mail")
    active = incident_actions.incident_create_manual(
        actor=None, service=public, title="Site is slow", severity="medium"
    )
    incident_actions.incident_create_manual(
        actor=None, service=internal, title="Batch queue stuck", severity="high"
    )
    recent = incident_actions.incident_create_manual(
        actor=None, service=other, title="Mail delayed", severity="low"
    )
    incident_actions.incident_resolve(incident=recent, actor=operator_user)
    old = incident_actions.incident_create_manual(
        actor=None, service=other, title="Mail outage in spring", severity="low"
    )
    incident_actions.incident_resolve(incident=old, actor=operator_user)
    Incident.objects.filter(pk=old.pk).update(resolved_at=timezone.now() - timedelta(days=8))
    started = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    Incident.objects.filter(pk=active.pk).update(impact_started_at=started)

    html = page(client)
    active_section = html[html.index('id="active-incidents"') : html.index('id="services"')]
    assert "Site: service disruption" in active_section
    assert 'badge-new">New<' in active_section
    assert "2026-11-20 09:30 UTC" in active_section
    resolved_section = html[html.index('id="resolved-incidents"') :]
    assert resolved_section.count("Mail: service disruption") == 1  # not the one of spring
    assert "Batch" not in html


# --- the 90-day uptime bar ----------------------------------------------------------------------


def test_uptime_cells_match_the_daily_uptime_of_the_hourly_rollup(
    client,
    make_service,
    native_rollups,
):
    site, batch = make_service(name="Site"), make_service(name="Batch", tags=["internal"])
    now = timezone.now()
    today = now.astimezone(UTC).date()
    ensure_rollup_partitions(now - timedelta(days=95), now + timedelta(days=1))

    def hour(days_ago: int, at: int) -> datetime:
        return datetime.combine(today - timedelta(days=days_ago), time(at), tzinfo=UTC)

    # (days ago, [(hour, up, degraded, down, maintenance)]) → the expected cell.
    days = {
        1: ([(3, 5000, 0, 0, 0), (15, 4995, 0, 5, 0)], "green", "99.95 % up"),
        2: ([(0, 999, 0, 1, 0)], "green", "99.90 % up"),  # 99.9 % exactly
        3: ([(1, 9000, 989, 11, 0)], "yellow", "99.89 % up"),  # degraded counts as up
        4: ([(2, 990, 0, 10, 0)], "yellow", "99.00 % up"),
        5: ([(23, 95, 0, 5, 0), (22, 0, 0, 0, 60)], "orange", "95.00 % up"),  # maintenance left out
        6: ([(12, 949, 0, 51, 0)], "red", "94.90 % up"),
        7: ([(12, 0, 0, 0, 60)], "grey", "no data"),  # only maintenance
        89: ([(0, 10, 0, 0, 0)], "green", "100.00 % up"),  # the oldest cell
    }
    for days_ago, (rows, _, _) in days.items():
        for at, up, degraded, down, maintenance in rows:
            insert_rollup(
                ROLLUP_HOURLY_TABLE.table, site.id, hour(days_ago, at),
                up=up, degraded=degraded, down=down, maintenance=maintenance,
            )  # fmt: skip
    insert_rollup(ROLLUP_HOURLY_TABLE.table, site.id, hour(90, 12), down=100)  # outside
    insert_rollup(ROLLUP_HOURLY_TABLE.table, batch.id, hour(1, 12), down=100)  # not public

    html = page(client)
    assert "99.64 % uptime" in html  # 23,027 good of 23,110 checks over the 90 days
    (bar,) = svgs(html, "uptime-bar")
    cells = bar.findall(f"{{{SVG_NS}}}rect")
    assert len(cells) == 90
    assert cells[-1].get("data-day") == f"{today:%Y-%m-%d}"
    by_day = {c.get("data-day"): c for c in cells}
    for days_ago in range(90):
        day = f"{today - timedelta(days=days_ago):%Y-%m-%d}"
        level, tooltip = days.get(days_ago, (None, "grey", "no data"))[1:]
        assert by_day[day].get("class") == f"cell cell-{level}", day
        assert by_day[day].find(f"{{{SVG_NS}}}title").text == f"{day}: {tooltip}"


# --- caching and cost ---------------------------------------------------------------------------


def test_the_rendered_page_is_cached_for_30_seconds(client, make_service):
    service = make_service(name="Site")
    set_status(service, "up")
    first = page(client)
    assert gzip.decompress(cache.get(views.STATUS_PAGE_CACHE_KEY)[1]).decode() == first
    set_status(service, "down")
    assert page(client) == first  # served from the cache
    cache.delete(views.STATUS_PAGE_CACHE_KEY)  # as the 30 s expiry would
    assert overall(page(client)) == "Major outage"


def test_the_status_page_costs_the_same_queries_for_3_or_30_services(
    client, make_service, django_assert_max_num_queries, django_assert_num_queries
):
    def populate(services: int, incidents: int) -> None:
        made = [make_service() for _ in range(services)]
        for service in made[:incidents]:
            incident_actions.incident_create_manual(
                actor=None, service=service, title="Down", severity="high"
            )

    populate(3, 1)
    with CaptureQueriesContext(connection) as small:
        page(client)
    # The settings, the services, their days, the groups, the incidents and their public
    # updates, the maintenance windows.
    assert len(small) <= 7
    populate(27, 4)
    cache.clear()
    with django_assert_max_num_queries(len(small)):
        html = page(client)
    assert html.count('class="uptime-bar"') == 30
    with django_assert_num_queries(0):
        page(client)  # cached
