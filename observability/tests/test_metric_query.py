"""GET /api/metrics/query and GET /api/metrics/series: values per step from raw points or a
rollup (which one is said), label and application selection, bounded cost, clear 4xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from noc.timeseries.rollups import is_native, refresh
from observability import actions
from observability.models import MetricSeries
from observability.tests.fixtures import point
from observability.tests.test_api import bearer
from observability.timeseries import METRICS_DAILY, METRICS_HOURLY

pytestmark = pytest.mark.django_db
URL = "/api/metrics/query"
NOW = datetime.now(UTC)
HOUR = NOW.replace(minute=0, second=0, microsecond=0)


def ingest(application, name: str, values, start: datetime, every=timedelta(minutes=1), **labels):
    batch = [point(name, v, start + i * every, **labels) for i, v in enumerate(values)]
    result = actions.metric_points_ingest(application=application, points=batch)
    assert result.rejected == 0, result.as_dict()


def query(client, **params):
    return client.get(URL, params)


def values(answer: dict, index: int = 0) -> list[float]:
    return [p["value"] for p in answer["series"][index]["points"]]


def test_raw_points_are_bucketed_by_step_for_each_aggregation(client_as, application):
    start = HOUR - timedelta(hours=2)
    ingest(application, "latency", [1, 2, 3, 4, 10, 20, 30, 40], start, timedelta(minutes=15))
    viewer = client_as("viewer")
    expected = {
        "avg": [2.5, 25.0], "sum": [10.0, 100.0], "min": [1.0, 10.0], "max": [4.0, 40.0],
        "count": [4.0, 4.0], "last": [4.0, 40.0],
        "p95": [pytest.approx(3.85), pytest.approx(38.5)],
    }  # fmt: skip
    for agg, wanted in expected.items():
        response = query(
            viewer, name="latency", agg=agg, step="1h",
            **{"from": start.isoformat(), "to": (start + timedelta(hours=2)).isoformat()},
        )  # fmt: skip
        assert response.status_code == 200, response.content
        answer = response.json()
        assert answer["step"] == 3600 and answer["agg"] == agg
        assert values(answer) == wanted, agg
    # One hour is a rollup bucket: the hourly rollup answers, from raw points until refreshed.
    assert answer["source"] == "metrics_hourly"
    short = query(viewer, name="latency", step="15m", **{"from": start.isoformat()}).json()
    assert short["source"] == "raw"
    assert values(short)[:4] == [1.0, 2.0, 3.0, 4.0]


def test_the_rate_of_a_counter_survives_a_restart(client_as, application):
    start = HOUR - timedelta(hours=1)
    # +10 a minute, restarted at the 4th point (from 30 to 5: a rise of 5).
    ingest(application, "requests_total", [0, 10, 20, 30, 5, 15], start, kind="counter")
    answer = query(
        client_as("viewer"), name="requests_total", agg="rate", step="10m",
        **{"from": start.isoformat(), "to": (start + timedelta(minutes=10)).isoformat()},
    ).json()  # fmt: skip
    assert answer["source"] == "raw"
    assert values(answer) == [pytest.approx((10 + 10 + 10 + 5 + 10) / 600)]


def test_labels_as_json_or_pairs_and_the_application_select_series(client_as, make_application):
    shop, _ = make_application("shop")
    billing, _ = make_application("billing")
    start = NOW - timedelta(minutes=30)
    ingest(shop, "up", [1], start, region="eu", tier="web")
    ingest(shop, "up", [0], start, region="us", tier="web")
    ingest(billing, "up", [1], start, region="eu", tier="db")
    viewer = client_as("viewer")
    assert len(query(viewer, name="up").json()["series"]) == 3
    by_pairs = query(viewer, name="up", labels="region=eu,tier=web").json()["series"]
    by_json = query(viewer, name="up", labels='{"region": "eu"}', application="shop").json()
    assert by_pairs == by_json["series"]
    assert [(s["application"], s["labels"]) for s in by_pairs] == [
        ("shop", {"region": "eu", "tier": "web"})
    ]
    assert query(viewer, name="up", application="billing").json()["series"][0]["labels"] == {
        "region": "eu", "tier": "db",
    }  # fmt: skip


def test_long_ranges_read_the_rollups_and_the_unsettled_hours_from_raw_points(
    client_as, application
):
    day = HOUR.replace(hour=0) - timedelta(days=3)
    ingest(application, "queue", [1, 2, 3], day + timedelta(hours=1), timedelta(hours=1))
    # The open hour: never in the native rollup, read from the raw points.
    ingest(application, "queue", [7, 9], HOUR, timedelta(seconds=1))
    if is_native(METRICS_HOURLY):
        refresh(METRICS_HOURLY)
        refresh(METRICS_DAILY)
    viewer = client_as("viewer")
    week = query(viewer, name="queue", agg="max", **{"from": "-7d"}).json()
    assert week["source"] == "metrics_hourly" and week["step"] == 3600
    assert [p["value"] for p in week["series"][0]["points"]] == [1.0, 2.0, 3.0, 9.0]
    year = query(viewer, name="queue", agg="sum", **{"from": "-365d", "to": "now"}).json()
    assert year["source"] == "metrics_daily"
    assert sum(values(year)) == 22.0
    assert (
        query(viewer, name="queue", agg="count", step="1d", **{"from": "-30d"}).json()["source"]
        == "metrics_daily"
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "name"),
        ({"name": "up", "agg": "median"}, "agg"),
        ({"name": "up", "from": "-1h", "to": "-2h"}, "from"),
        ({"name": "up", "from": "yesterday"}, "from"),
        ({"name": "up", "to": "2026-13-40"}, "to"),
        ({"name": "up", "step": "fortnight"}, "step"),
        ({"name": "up", "step": "0s"}, "step"),
        ({"name": "up", "labels": "{not json"}, "labels"),
        ({"name": "up", "labels": "region"}, "labels"),
        ({"name": "up", "labels": '{"n": 1}'}, "labels"),
        ({"name": "up", "application": "nowhere"}, "application"),
        ({"name": "up", "step": "1s", "from": "-1d"}, "step"),
    ],
)
def test_bad_queries_are_a_400_naming_the_parameter(client_as, application, params, field):
    ingest(application, "up", [1], NOW - timedelta(minutes=5))
    response = query(client_as("viewer"), **params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["errors"], body
    assert body["message"]


def test_a_query_naming_no_series_is_a_404(client_as, application):
    response = query(client_as("viewer"), name="nothing_here")
    assert response.status_code == 404
    assert "nothing_here" in response.json()["message"]


@override_settings(METRICS_QUERY_TIMEOUT_MS=1)
def test_a_query_past_the_statement_timeout_is_a_400(client_as, application):
    start = NOW - timedelta(hours=23)
    ingest(application, "busy", range(60_000), start, timedelta(seconds=1))
    response = query(client_as("viewer"), name="busy", agg="p95", **{"from": "-1d"})
    assert response.status_code == 400, response.content
    assert "METRICS_QUERY_TIMEOUT_MS" in response.json()["message"]


def test_an_ingest_key_reads_nothing(make_application):
    _, key = make_application("shop")
    response = bearer(key).get(URL, {"name": "up"})
    assert response.status_code == 403
    assert "only writes" in response.json()["message"]
    assert bearer(key).get("/api/metrics/series").status_code == 403


def test_the_series_list_filters_by_application_and_name_prefix(
    client_as, make_application, django_assert_max_num_queries
):
    shop, _ = make_application("shop")
    billing, _ = make_application("billing")
    for name in ("http_requests_total", "http_errors_total", "queue_depth"):
        ingest(shop, name, [1], NOW - timedelta(minutes=1), host="a")
        ingest(billing, name, [1], NOW - timedelta(minutes=1), host="b")
    viewer = client_as("viewer")
    with django_assert_max_num_queries(6):
        page = viewer.get("/api/metrics/series", {"application": "shop", "prefix": "http_"})
    assert page.status_code == 200
    rows = page.json()["results"]
    assert [(r["name"], r["application"], r["labels"]) for r in rows] == [
        ("http_errors_total", "shop", {"host": "a"}),
        ("http_requests_total", "shop", {"host": "a"}),
    ]
    assert viewer.get("/api/metrics/series").json()["count"] == MetricSeries.objects.count()


def test_the_metrics_index_links_every_metrics_endpoint(client_as):
    index = client_as("viewer").get("/api/metrics/").json()
    assert index["query"].endswith("/api/metrics/query")
    assert index["otlp"].endswith("/v1/metrics")
    assert client_as("viewer").get("/api/").json()["metrics"].endswith("/api/metrics/")


def test_a_late_point_is_read_before_the_rollup_recomputes_its_bucket(client_as, application):
    if not is_native(METRICS_HOURLY):
        pytest.skip("TimescaleDB's continuous aggregates track late writes themselves")
    hour = HOUR - timedelta(hours=5)
    ingest(application, "late", [1, 2], hour + timedelta(minutes=5))
    refresh(METRICS_HOURLY)
    ingest(application, "late", [10], hour + timedelta(minutes=30))  # marks the hour dirty
    answer = query(
        client_as("viewer"), name="late", agg="max", step="1h", **{"from": hour.isoformat()}
    ).json()
    assert answer["source"] == "metrics_hourly"
    assert values(answer) == [10.0]
