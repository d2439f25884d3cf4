"""A service's page: what it shows, who may act on it, that actions are the audited ones of
the API, and what it costs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.choices import Role
from accounts.models import AuditEvent
from incidents import actions as incident_actions
from services.actions import Observation, check_results_record
from services.models import CheckResult, MaintenanceWindow, Service
from services.tests.fixtures import ensure_partitions
from services.timeseries import CHECK_RESULTS, ROLLUP_HOURLY_TABLE, ROLLUP_TABLE
from web.charts import SVG_NS
from web.queries.service import RANGES, response_series
from web.tests.forms import messages_of, submit
from web.tests.helpers import ensure_rollup_partitions, insert_rollup, make_slo, svgs


def url(service: Service) -> str:
    return f"/services/{service.pk}/"


def record(service: Service, status: str, *, minutes_ago: float, error: str = "", **fields):
    now = timezone.now()
    ensure_partitions(CHECK_RESULTS, now - timedelta(days=1), now + timedelta(days=1))
    due = now - timedelta(minutes=minutes_ago)
    check_results_record(
        results=[
            Observation(
                service_id=service.pk, due=due, started_at=due, status=status, error=error,
                response_time_ms=fields.pop("response_time_ms", 42.0), **fields,
            )
        ],
        claimed=False,
    )  # fmt: skip


# --- what it shows ------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client, make_service):
    service = make_service()
    response = client.get(url(service))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_unknown_service_is_a_404(console_as, db):
    assert console_as(Role.VIEWER).get("/services/nope/").status_code == 404


def test_the_page_shows_status_last_error_and_a_heartbeat_of_the_last_checks(
    console_as, make_service
):
    service = make_service(name="Checkout", tags=["shop"], critical=True)
    for i in range(5):
        record(service, "up", minutes_ago=10 - i)
    record(service, "down", minutes_ago=1, error="HTTP 503 from upstream", status_code=503)
    html = console_as(Role.VIEWER).get(url(service)).content.decode()
    assert 'id="service-name">Checkout<' in html
    assert 'id="service-status">' in html
    assert 'id="last-error">HTTP 503 from upstream<' in html
    (beats,) = svgs(html, "heartbeat")
    cells = beats.findall(f"{{{SVG_NS}}}rect")
    assert [c.get("class") for c in cells] == ["beat beat-up"] * 5 + ["beat beat-down"]
    assert "HTTP 503 from upstream" in cells[-1].find(f"{{{SVG_NS}}}title").text
    assert service.url in html  # the target, for people who read the API anyway


def test_credentials_in_a_url_are_not_shown(console_as, make_service, target):
    service = make_service(url=target.replace("http://", "http://ops:hunter2@") + "/ok")
    html = console_as(Role.VIEWER).get(url(service)).content.decode()
    assert "hunter2" not in html
    assert f"{target}/ok" in html


def test_uptime_over_four_windows_and_response_percentiles_from_the_rollups(
    console_as, make_service, native_rollups
):
    service = make_service(name="API")
    now = timezone.now()
    ensure_rollup_partitions(now - timedelta(days=95), now + timedelta(days=1))
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    # The last 24 hours: 99 of 100 good (minute rollup).
    insert_rollup(ROLLUP_TABLE.table, service.pk, hour - timedelta(hours=2), up=99, down=1,
                  rt_ms=80.0)  # fmt: skip
    # Hourly rollup: 3 days ago 100 good, 20 days ago 100 bad, 60 days ago 100 good.
    for days_ago, up, down in ((3, 100, 0), (20, 0, 100), (60, 100, 0)):
        insert_rollup(ROLLUP_HOURLY_TABLE.table, service.pk, hour - timedelta(days=days_ago),
                      up=up, down=down, rt_ms=80.0)  # fmt: skip
    html = console_as(Role.VIEWER).get(url(service)).content.decode()
    windows = {w: html.split(f'data-window="{w}"')[1].split("</div>")[0] for w in
               ("24h", "7d", "30d", "90d")}  # fmt: skip
    assert "99.00 %" in windows["24h"]
    assert "100.00 %" in windows["7d"]
    assert "50.00 %" in windows["30d"]
    assert "66.66 %" in windows["90d"]  # rounded down


def test_response_percentiles_per_bucket_come_from_the_histogram(make_service, native_rollups):
    service = make_service()
    now = datetime(2026, 12, 5, 12, 7, tzinfo=UTC)
    ensure_rollup_partitions(now - timedelta(days=1), now + timedelta(days=1))
    # One minute with 90 checks at 40 ms and 10 at 900 ms, in the bucket 12:00–12:15.
    minute = datetime(2026, 12, 5, 12, 3, tzinfo=UTC)
    insert_rollup(ROLLUP_TABLE.table, service.pk, minute, up=90, rt_ms=40.0)
    insert_rollup(ROLLUP_TABLE.table, service.pk, minute + timedelta(minutes=1), up=10,
                  rt_ms=900.0)  # fmt: skip
    series = response_series(service.pk, RANGES["24h"], now)
    assert len(series.buckets) == 96
    last = series.buckets[-1]
    assert last.start == datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert last.count == 100
    assert 40 <= last.p50_ms <= 50  # in the first bucket, narrowed to the observed minimum
    assert 500 < last.p95_ms <= 900  # inside the (500, 1000] bucket, at most the maximum
    assert all(b.count == 0 and b.p50_ms is None for b in series.buckets[:-1])


@pytest.mark.parametrize("range_key", ["1h", "24h", "7d", "30d", "bogus"])
def test_every_range_renders_a_chart(console_as, make_service, range_key):
    service = make_service()
    response = console_as(Role.VIEWER).get(url(service) + f"?range={range_key}")
    assert response.status_code == 200
    (chart,) = svgs(response.content.decode(), "line-chart")
    assert chart.get("aria-label").endswith(RANGES.get(range_key, RANGES["24h"]).label)


def test_its_incidents_slos_and_maintenance_link_to_their_pages(console_as, make_service):
    service = make_service(name="Search")
    incident = incident_actions.incident_create_manual(
        actor=None, service=service, title="Search is slow", severity="medium"
    )
    make_slo(service, "search-availability", violation_risk="low")
    window = MaintenanceWindow.objects.create(
        name="Index rebuild", starts_at=timezone.now() + timedelta(days=1),
        ends_at=timezone.now() + timedelta(days=1, hours=2),
    )  # fmt: skip
    window.services.add(service)
    html = console_as(Role.VIEWER).get(url(service)).content.decode()
    assert f'href="/incidents/{incident.pk}/"' in html
    assert 'href="/slos/search-availability/"' in html
    assert "Index rebuild" in html


# --- who may act --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "buttons"),
    [
        (Role.VIEWER, set()),
        (Role.OPERATOR, {"Check now"}),
        (Role.ADMIN, {"Check now", "Pause checks", "Edit in the admin"}),
    ],
)
def test_each_role_sees_the_actions_the_api_allows_it(console_as, make_service, role, buttons):
    html = console_as(role).get(url(make_service())).content.decode()
    for label in ("Check now", "Pause checks", "Edit in the admin"):
        assert (label in html) == (label in buttons), label


def test_check_now_records_a_result_and_an_audit_event(console_as, make_service):
    service = make_service(path="/down", name="Flaky")
    client = console_as(Role.OPERATOR)
    response = submit(client, url(service), f"{url(service)}check-now/")
    assert response.status_code == 302
    assert response["Location"] == url(service)
    assert CheckResult.objects.filter(service_id=service.pk).count() == 1
    event = AuditEvent.objects.get(verb="check_now")
    assert event.target_id == service.pk
    assert event.actor_label.startswith("operator")
    (message,) = messages_of(client, url(service))
    assert message.startswith("Checked: down")


def test_a_viewer_cannot_check_now_even_by_posting(console_as, make_service):
    service = make_service()
    response = submit(console_as(Role.VIEWER), url(service), f"{url(service)}check-now/")
    assert response.status_code == 403
    assert not CheckResult.objects.filter(service_id=service.pk).exists()


def test_pause_needs_the_admin_role_as_in_the_api(console_as, make_service):
    service = make_service()
    response = submit(console_as(Role.OPERATOR), url(service), f"{url(service)}pause/")
    assert response.status_code == 403
    admin = console_as(Role.ADMIN)
    assert submit(admin, url(service), f"{url(service)}pause/").status_code == 302
    service.refresh_from_db()
    assert not service.enabled
    assert AuditEvent.objects.filter(target_id=service.pk, action="update").exists()
    assert "Resume checks" in admin.get(url(service)).content.decode()
    assert submit(admin, url(service), f"{url(service)}resume/").status_code == 302
    service.refresh_from_db()
    assert service.enabled


def test_actions_need_a_csrf_token_and_a_post(console_as, make_service):
    service = make_service()
    client = console_as(Role.ADMIN)
    assert client.post(f"{url(service)}check-now/").status_code == 403  # no token
    assert client.get(f"{url(service)}check-now/").status_code == 405
    assert not CheckResult.objects.filter(service_id=service.pk).exists()


# --- cost ---------------------------------------------------------------------------------------


def test_the_page_costs_the_same_queries_for_few_or_many_services_and_checks(
    console_as, make_service, django_assert_max_num_queries
):
    service = make_service()
    client = console_as(Role.ADMIN)
    client.get(url(service))
    with CaptureQueriesContext(connection) as small:
        assert client.get(url(service)).status_code == 200
    # Session, user, service, results, 24 h uptime, series, long uptimes, incidents, SLOs,
    # maintenance windows, the status page settings, whether it is public.
    assert len(small) <= 12
    for _ in range(40):
        make_service()
    for i in range(30):
        record(service, "down" if i % 3 else "up", minutes_ago=60 - i)
    for i in range(3):
        make_slo(service, f"slo-{i}")
    with django_assert_max_num_queries(len(small)):
        client.get(url(service))
