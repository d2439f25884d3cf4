"""Metric-based SLOs: counters and histograms pushed through POST /api/metrics/ingest, evaluated
from the hourly rollup and the raw points, with budgets, burn rates and burn-rate alerts."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.choices import Role
from incidents import delivery
from incidents.models import Incident, NotificationChannel, NotificationDelivery
from noc.timeseries.rollups import is_native
from observability.timeseries import METRICS_DAILY, METRICS_HOURLY
from services.tests.fixtures import refresh_rollups
from slos import actions
from slos.models import SLO, SLOAlert, SLOStatus

pytestmark = pytest.mark.django_db

INGEST = "/api/metrics/ingest"
URL = "/api/slos/"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
H = NOW.replace(minute=0)  # the current hour
ROUTE = {"route": "/checkout"}


@pytest.fixture
def operator(client_as):
    return client_as(Role.OPERATOR)


@pytest.fixture
def admin(client_as):
    return client_as(Role.ADMIN)


@pytest.fixture
def shop(make_application):
    return make_application("shop")[0]


def push(client, points: list[tuple[str, dict, float, datetime]], kind: str = "counter") -> None:
    document = {
        "application": "shop",
        "points": [
            {"name": name, "labels": labels, "value": value, "time": when.isoformat(),
             "kind": kind}
            for name, labels, value, when in points
        ],
    }  # fmt: skip
    response = client.post(INGEST, document, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["rejected"] == 0


# Requests (total) and successful requests (good) as cumulative counters, with two restarts
# (resets) in the hourly rollup's part and one in the raw points' part (the last 6 h):
#
#   time           total  good   Δtotal  Δgood
#   H − 20 h        1000  1000        0      0   (a series' first point counts nothing)
#   H − 12 h        3000  2990     2000   1990
#   H − 11 h         500   400      500    400   reset between two hourly buckets
#   H − 11 h + 20m   800   690      300    290
#   H − 11 h + 40m   100   100      100    100   reset inside one hourly bucket
#   H − 3 h         1500  1380     1400   1280   (raw points from here on)
#   NOW − 30 m       200   150      200    150   reset
#   NOW − 2 m       1200  1100     1000    950
#                                  ----   ----
#   24 h window                    5500   5160   bad 340
COUNTERS = [
    (H - timedelta(hours=20), 1000, 1000),
    (H - timedelta(hours=12), 3000, 2990),
    (H - timedelta(hours=11), 500, 400),
    (H - timedelta(hours=11) + timedelta(minutes=20), 800, 690),
    (H - timedelta(hours=11) + timedelta(minutes=40), 100, 100),
    (H - timedelta(hours=3), 1500, 1380),
    (NOW - timedelta(minutes=30), 200, 150),
    (NOW - timedelta(minutes=2), 1200, 1100),
]


def push_counters(client) -> None:
    points = []
    for when, total, good in COUNTERS:
        points.append(("http_requests_total", ROUTE, total, when))
        points.append(("http_requests_good_total", ROUTE, good, when))
    # Another route's series, which the selectors' labels leave out.
    points.append(("http_requests_total", {"route": "/health"}, 10**6, NOW - timedelta(hours=1)))
    points.append(("http_requests_total", {"route": "/health"}, 1, NOW - timedelta(minutes=9)))
    push(client, points)


def selector(name: str, **labels: str) -> dict:
    return {"application": "shop", "name": name, "labels": labels or ROUTE}


def ratio_slo(admin, **fields) -> dict:
    body = {
        "id": "checkout-success", "name": "Checkout success", "sli_type": "ratio",
        "target": "99", "window": "24h",
        "good_metric": selector("http_requests_good_total"),
        "total_metric": selector("http_requests_total"), **fields,
    }  # fmt: skip
    response = admin.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def delete_raw_points_before(moment: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM observability_metricpoint WHERE time < %s", [moment])
        return cursor.rowcount


@pytest.mark.parametrize("from_rollup", [True, False], ids=["hourly-rollup", "raw-points"])
def test_a_counter_ratio_counts_increases_across_resets(from_rollup, shop, operator, admin):
    push_counters(operator)
    ratio_slo(admin)
    if from_rollup:
        if not is_native(METRICS_HOURLY):
            pytest.skip("TimescaleDB's real-time aggregate cannot be read without raw points")
        refresh_rollups(METRICS_HOURLY.name, now=NOW)
        # What is older than the raw part (6 h) is then read from metrics_hourly alone.
        assert delete_raw_points_before(H - timedelta(hours=5)) == 10
    assert actions.slos_evaluate(now=NOW) == 1
    slo = SLO.objects.get()
    assert slo.current_value == 93.8182  # 100 × 5160 / 5500
    assert slo.compliant is False
    assert slo.budget_total_minutes == 14.4  # (1 − 0.99) × 1440
    assert slo.budget_used_minutes == 89.0182  # 340 / 5500 × 1440
    assert slo.budget_remaining_minutes == pytest.approx(-74.6182)
    assert slo.burn_rate == 8.3333  # last hour: 100 bad of 1200, / 0.01
    assert slo.violation_risk == "critical"
    history = SLOStatus.objects.get(slo=slo)
    assert (history.good, history.total) == (5160, 5500)


def test_burn_rates_of_each_lookback_and_the_alerts_they_fire(shop, operator, admin, make_service):
    service = make_service()
    push_counters(operator)
    ratio_slo(admin, service=service.id)
    refresh_rollups(METRICS_HOURLY.name, now=NOW)
    slo = SLO.objects.get()
    [evaluation] = [
        actions.evaluate(slo, readings, NOW) for readings in actions.slos_read([slo], NOW).values()
    ]
    burns = {lb.total_seconds() / 60: burn for lb, burn in evaluation.burns.items()}
    assert burns == {
        5: 5.0,  # 50 bad of 1000
        30: 8.3333,  # 100 of 1200 (the point at NOW − 30 m is in)
        60: 8.3333,
        120: 8.3333,
        360: 8.4615,  # 220 of 2600: the step from 100 to 1500 at H − 3 h is in
        1440: 6.1818,  # 340 of 5500
        4320: 6.1818,
    }
    actions.slos_evaluate(now=NOW)
    # A 24 h window: every factor is at least 1, so all three applicable rules fire.
    firing = {a.rule: a for a in SLOAlert.objects.filter(slo=slo, state="firing")}
    assert set(firing) == {"page-1h-5m", "page-6h-30m", "ticket-1d-2h"}
    assert (firing["page-1h-5m"].long_burn, firing["page-1h-5m"].short_burn) == (8.3333, 5.0)
    incident = Incident.objects.get(service=service)
    assert incident.source == "slo"
    assert firing["page-1h-5m"].incident == incident


def test_a_latency_histogram_counts_the_bucket_at_or_under_the_threshold(shop, operator, admin):
    bounds = ["0.1", "0.25", "0.5", "+Inf"]
    before, after = [10, 20, 25, 30], [110, 200, 290, 330]  # cumulative by bound and in time
    points = []
    for when, counts in ((H - timedelta(hours=20), before), (NOW - timedelta(minutes=10), after)):
        for le, count in zip(bounds, counts, strict=True):
            points.append(("http_duration_seconds_bucket", {**ROUTE, "le": le}, count, when))
        points.append(("http_duration_seconds_count", ROUTE, counts[-1], when))
    push(operator, points, kind="histogram")
    response = admin.post(
        URL,
        {
            "id": "checkout-fast", "name": "Checkout under 300 ms", "sli_type": "histogram",
            "target": "95", "window": "7d",
            "histogram_metric": selector("http_duration_seconds"), "histogram_threshold": 0.3,
        },
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    actions.slos_evaluate(now=NOW)
    slo = SLO.objects.get()
    # Good: le=0.25 (the largest bound under 0.3) went 20 → 200; total 30 → 330.
    assert slo.current_value == 60.0  # 180 / 300
    assert slo.burn_rate == 8.0  # 120 bad of 300 in the last hour, / 0.05
    assert slo.budget_total_minutes == 504.0  # 0.05 × 7 days
    assert slo.budget_used_minutes == 4032.0  # 0.4 × 10,080 minutes


def test_metric_slos_need_valid_selectors_each_error_naming_its_field(shop, operator, admin):
    push(operator, [("queue_depth", {}, 3, NOW - timedelta(minutes=5))], kind="gauge")
    push(operator, [("http_requests_total", ROUTE, 3, NOW - timedelta(minutes=5))])
    base = {"id": "bad", "name": "Bad", "target": "99", "window": "24h"}
    total = selector("http_requests_total")
    cases = [
        ({"sli_type": "ratio", "good_metric": total}, "total_metric", "Required"),
        ({"sli_type": "ratio", "good_metric": selector("nope_total"), "total_metric": total},
         "good_metric", "No series nope_total"),
        ({"sli_type": "ratio", "good_metric": {"application": "shop", "name": "queue_depth"},
          "total_metric": total}, "good_metric", "gauge"),
        ({"sli_type": "ratio", "good_metric": "http_requests_total", "total_metric": total},
         "good_metric", "An object"),
        ({"sli_type": "ratio", "good_metric": {**total, "app": "x"}, "total_metric": total},
         "good_metric", "Unknown key 'app'"),
        ({"sli_type": "ratio", "good_metric": {**total, "application": "other"},
          "total_metric": total}, "good_metric", "application 'other'"),
        ({"sli_type": "ratio", "good_metric": total, "total_metric": total,
          "budgeting_method": "timeslices"}, "budgeting_method", "occurrences"),
        ({"sli_type": "histogram", "histogram_metric": selector("http_duration_seconds")},
         "histogram_threshold", "needs a threshold"),
        ({"sli_type": "histogram", "histogram_metric": selector("http_duration_seconds"),
          "histogram_threshold": 0.3}, "histogram_metric", "No histogram"),
        ({"sli_type": "availability"}, "service", "name the service"),
        ({"sli_type": "availability", "total_metric": total}, "total_metric", "Only for metric"),
        ({"sli_type": "apdex"}, "sli_type", "not a valid choice"),
    ]  # fmt: skip
    for fields, field, message in cases:
        response = admin.post(URL, {**base, **fields}, format="json")
        assert response.status_code == 400, (fields, response.content)
        errors = response.json()["errors"]
        assert field in errors, (fields, errors)
        assert message in " ".join(errors[field]), (fields, errors)
    assert not SLO.objects.exists()


def test_a_histogram_threshold_under_every_bucket_is_refused(shop, operator, admin):
    when = NOW - timedelta(minutes=5)
    push(
        operator,
        [("lat_seconds_bucket", {"le": "0.5"}, 1, when), ("lat_seconds_bucket", {"le": "+Inf"}, 1,
          when), ("lat_seconds_count", {}, 1, when)],
        kind="histogram",
    )  # fmt: skip
    body = {
        "id": "lat", "name": "Lat", "target": "99", "window": "24h", "sli_type": "histogram",
        "histogram_metric": {"application": "shop", "name": "lat_seconds"},
        "histogram_threshold": 0.1,
    }  # fmt: skip
    response = admin.post(URL, body, format="json")
    assert response.status_code == 400
    assert "bounds: 0.5, inf" in response.json()["errors"]["histogram_threshold"][0]
    response = admin.post(URL, {**body, "histogram_threshold": 0.5}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["service"] is None
    assert response.json()["service_name"] is None


def test_a_metric_slo_exports_and_imports_back(shop, operator, admin, tmp_path):
    push_counters(operator)
    ratio_slo(admin)
    exported = io.StringIO()
    call_command("export_slos", stdout=exported)
    document = json.loads(exported.getvalue())
    [row] = document["slos"]
    assert (row["service"], row["good_metric"]) == (None, selector("http_requests_good_total"))
    columns = ["id", "service_id", "sli_type", "good_metric", "total_metric", "target"]
    before = list(SLO.objects.values_list(*columns))
    SLO.objects.all().delete()
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document))
    out = io.StringIO()
    call_command("import_slos", str(path), stdout=out)
    assert "created 1" in out.getvalue()
    assert list(SLO.objects.values_list(*columns)) == before


def test_a_page_of_a_metric_slo_about_no_service_is_a_high_notice(
    shop, operator, admin, receiver, settings
):
    settings.NOTIFICATION_ALLOW_PRIVATE = True
    pager = delivery.channel_save(
        actor=None,
        channel=NotificationChannel(
            name="pager", kind="webhook", url=receiver.url, is_default=True, min_severity="high"
        ),
    )
    push_counters(operator)
    ratio_slo(admin)
    actions.slos_evaluate(now=NOW)
    pages = SLOAlert.objects.filter(severity="page", state="firing")
    assert {a.rule for a in pages} == {"page-1h-5m", "page-6h-30m"}
    assert not Incident.objects.exists()
    # The pager (high and above) hears of both pages, not of the ticket.
    rows = NotificationDelivery.objects.order_by("id")
    assert [(r.channel, r.kind) for r in rows] == [(pager, "slo_ticket")] * 2
    assert delivery.delivery_attempt(delivery_id=rows[0].pk) == "sent"
    assert receiver.requests[0].json()["title"] == "SLO page: Checkout success"


def test_reading_many_metric_slos_costs_the_same_statements_as_one(shop, operator, admin):
    push_counters(operator)
    ratio_slo(admin)
    now = NOW

    def statements() -> int:
        slos = list(SLO.objects.all())
        with CaptureQueriesContext(connection) as queries:
            readings = actions.slos_read(slos, now)
        assert len(readings) == len(slos)
        return len(queries)

    one = statements()
    for n in range(5):
        ratio_slo(
            admin, id=f"copy-{n}", total_metric=selector("http_requests_total", route="/health")
        )
    # The backend (two catalog reads), the watermark (native rollups only), the series, the
    # events.
    assert statements() == one == (5 if is_native(METRICS_HOURLY) else 4)


def test_a_7_day_window_reads_whole_days_from_metrics_daily(shop, operator, admin):
    if not is_native(METRICS_HOURLY):
        pytest.skip("TimescaleDB's real-time aggregates cannot be read without raw points")
    day = H.replace(hour=0)
    points = [  # (time, total, good): events 1750, good 1680
        (day - timedelta(days=6, hours=-2), 100, 100),  # the first point: nothing
        (day - timedelta(days=5, hours=-1), 500, 490),  # +400 +390 (step between days)
        (day - timedelta(days=5, hours=-5), 50, 50),  # reset inside a day: +50 +50
        (day - timedelta(days=4, hours=-12), 250, 240),  # +200 +190
        (day - timedelta(days=2, hours=-1), 1250, 1200),  # +1000 +960
        (NOW - timedelta(minutes=10), 1350, 1290),  # +100 +90
    ]
    push(
        operator,
        [p for when, total, good in points for p in (
            ("http_requests_total", ROUTE, total, when),
            ("http_requests_good_total", ROUTE, good, when),
        )],
    )  # fmt: skip
    ratio_slo(admin, window="7d")
    refresh_rollups(METRICS_HOURLY.name, METRICS_DAILY.name, now=NOW)
    delete_raw_points_before(H - timedelta(hours=5))
    # The days between the window's first whole day and 3 days ago come from metrics_daily
    # alone: without their hourly rows the numbers are the same.
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM metrics_hourly WHERE bucket >= %s AND bucket < %s",
            [day - timedelta(days=5), day - timedelta(days=4)],
        )
        assert cursor.rowcount == 4  # two series, two hours
    actions.slos_evaluate(now=NOW)
    slo = SLO.objects.get()
    assert slo.current_value == 96.0  # 1680 / 1750
    assert slo.budget_total_minutes == 100.8  # 0.01 × 10,080
    assert slo.budget_used_minutes == 403.2  # 70 / 1750 × 10,080
    assert slo.burn_rate == 10.0  # the last hour: 10 bad of 100, / 0.01


def test_an_slo_whose_series_went_away_can_still_be_disabled_not_pointed_elsewhere(
    shop, operator, admin
):
    push_counters(operator)
    ratio_slo(admin)
    shop.delete()  # its series go with it
    url = f"{URL}checkout-success/"
    assert admin.patch(url, {"enabled": False}, format="json").status_code == 200
    moved = {"total_metric": selector("http_requests_total", route="/health")}
    response = admin.patch(url, moved, format="json")
    assert response.status_code == 400
    assert "No series" in response.json()["errors"]["total_metric"][0]
    # Evaluating it meanwhile finds no events: no data, nothing invented.
    SLO.objects.update(enabled=True)
    actions.slos_evaluate(now=NOW)
    slo = SLO.objects.get()
    assert (slo.current_value, slo.compliant, slo.burn_rate) == (None, None, None)
