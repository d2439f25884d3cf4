"""metric_points_ingest: series found or created in bulk, points COPYed, limits counted."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from noc.models import RollupWatermark
from observability import actions, series, storage
from observability.models import MetricPoint as StoredPoint
from observability.models import MetricSeries
from observability.points import Limits, MetricPoint, to_us
from observability.tests.fixtures import point

pytestmark = pytest.mark.django_db
NOW = datetime.now(UTC).replace(microsecond=0)


def stored(application) -> list[tuple[str, dict, datetime, float]]:
    rows = StoredPoint.objects.filter(series__application=application).select_related("series")
    found = [(p.series.name, p.series.labels, p.time, p.value) for p in rows]
    return sorted(found, key=lambda row: (row[0], sorted(row[1].items()), row[2]))


def test_points_are_stored_once_per_series_with_labels_kept_on_the_series(application):
    result = actions.metric_points_ingest(
        application=application,
        points=[
            point("http_requests_total", 10, NOW - timedelta(seconds=20), route="/a"),
            point("http_requests_total", 12, NOW - timedelta(seconds=10), route="/a"),
            point("http_requests_total", 3, NOW - timedelta(seconds=10), route="/b"),
            MetricPoint("queue_depth", {}, 7.5, None),  # no time: now
        ],
    )
    assert (result.accepted, result.rejected, result.series_created) == (4, 0, 3)
    assert MetricSeries.objects.filter(application=application).count() == 3
    rows = stored(application)
    assert rows[:3] == [
        ("http_requests_total", {"route": "/a"}, NOW - timedelta(seconds=20), 10.0),
        ("http_requests_total", {"route": "/a"}, NOW - timedelta(seconds=10), 12.0),
        ("http_requests_total", {"route": "/b"}, NOW - timedelta(seconds=10), 3.0),
    ]
    assert rows[3][0] == "queue_depth"
    assert abs(rows[3][2] - datetime.now(UTC)) < timedelta(seconds=30)


def test_the_same_batch_sent_twice_is_stored_once(application):
    batch = [point("temp", v, NOW - timedelta(seconds=v), room=str(v % 3)) for v in range(30)]
    first = actions.metric_points_ingest(application=application, points=batch)
    again = actions.metric_points_ingest(application=application, points=batch)
    assert first.accepted == again.accepted == 30
    assert again.series_created == 0
    assert StoredPoint.objects.filter(series__application=application).count() == 30


def test_a_retry_mixing_stored_and_new_points_stores_the_new_ones(application):
    old = [point("temp", 1, NOW - timedelta(seconds=20))]
    actions.metric_points_ingest(application=application, points=old)
    actions.metric_points_ingest(
        application=application, points=[*old, point("temp", 2, NOW - timedelta(seconds=10))]
    )
    assert [row[3] for row in stored(application)] == [1.0, 2.0]


def test_two_values_at_one_time_keep_the_last(application):
    when = NOW - timedelta(seconds=5)
    result = actions.metric_points_ingest(
        application=application, points=[point("temp", 1, when), point("temp", 2, when)]
    )
    assert result.accepted == 2
    assert [row[3] for row in stored(application)] == [2.0]


def test_label_order_does_not_make_another_series(application):
    actions.metric_points_ingest(
        application=application,
        points=[
            MetricPoint("m", {"a": "1", "b": "2"}, 1.0, to_us(NOW - timedelta(seconds=2))),
            MetricPoint("m", {"b": "2", "a": "1"}, 2.0, to_us(NOW - timedelta(seconds=1))),
        ],
    )
    assert MetricSeries.objects.filter(application=application).count() == 1


def test_applications_do_not_share_series(make_application):
    shop, _ = make_application("shop")
    blog, _ = make_application("blog")
    for application in (shop, blog):
        actions.metric_points_ingest(application=application, points=[point("up", 1)])
    assert MetricSeries.objects.filter(name="up").count() == 2


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (point("2fast", 1), "invalid_name"),
        (point("http.requests", 1), "invalid_name"),
        (MetricPoint("m", {"bad-label": "x"}, 1.0), "invalid_labels"),
        (MetricPoint("m", {"__name__": "x"}, 1.0), "invalid_labels"),
        (MetricPoint("m", {"a": "x" * 1025}, 1.0), "invalid_labels"),
        (MetricPoint("m", {"a": "nul\x00"}, 1.0), "invalid_labels"),
        (MetricPoint("m", {"a": "\ud800"}, 1.0), "invalid_labels"),
        (MetricPoint("m", {f"l{i}": "v" for i in range(33)}, 1.0), "too_many_labels"),
        (point("m", float("nan")), "non_finite"),
        (point("m", float("-inf")), "non_finite"),
        (point("m", 1, NOW - timedelta(days=366)), "too_old"),
        (point("m", 1, NOW + timedelta(minutes=11)), "too_new"),
    ],
)
def test_a_point_breaking_a_limit_is_counted_by_reason_and_not_stored(application, bad, reason):
    result = actions.metric_points_ingest(
        application=application, points=[bad, point("ok", 1, NOW)], now_us=to_us(NOW)
    )
    assert (result.accepted, result.rejected, dict(result.rejections)) == (1, 1, {reason: 1})
    assert result.examples
    assert [row[0] for row in stored(application)] == ["ok"]


def test_a_batch_with_only_rejected_points_writes_nothing(application):
    result = actions.metric_points_ingest(
        application=application, points=[point("m", float("nan")), point("bad name", 1)]
    )
    assert (result.accepted, result.rejected) == (0, 2)
    assert not MetricSeries.objects.exists()


def test_new_series_beyond_the_application_limit_are_refused(application):
    limits = Limits(max_labels=32, max_label_length=1024, max_series=3, retention_us=10**14)
    first = actions.metric_points_ingest(
        application=application, points=[point("m", 1, host=f"h{i}") for i in range(2)],
        limits=limits,
    )  # fmt: skip
    second = actions.metric_points_ingest(
        application=application,
        points=[point("m", 2, host=f"h{i}") for i in range(4)] + [point("m", 3, host="h9")],
        limits=limits,
    )
    assert first.accepted == 2
    # h0, h1 exist; h2 takes the last place; h3 and h9 are refused.
    assert (second.accepted, second.rejected, dict(second.rejections)) == (3, 2, {"cardinality": 2})
    assert MetricSeries.objects.filter(application=application).count() == 3


def test_a_late_point_gets_its_partition_and_marks_the_rollups_dirty(application):
    when = NOW - timedelta(days=40)
    RollupWatermark.objects.create(name="metrics_hourly", upto=NOW - timedelta(hours=1))
    storage.forget_partitions()
    result = actions.metric_points_ingest(application=application, points=[point("m", 1, when)])
    assert result.accepted == 1
    assert stored(application)[0][2] == when
    mark = RollupWatermark.objects.get(name="metrics_hourly")
    assert mark.dirty_since == when


def test_live_points_leave_the_rollup_watermarks_alone(application):
    RollupWatermark.objects.create(name="metrics_hourly", upto=NOW - timedelta(hours=1))
    actions.metric_points_ingest(application=application, points=[point("m", 1)])
    assert RollupWatermark.objects.get(name="metrics_hourly").dirty_since is None


def test_a_known_series_costs_no_lookup_once_cached(application):
    batch = [point("m", 1, NOW - timedelta(seconds=1), host="a")]
    actions.metric_points_ingest(application=application, points=batch)
    [row] = MetricSeries.objects.filter(application=application)
    series.remember(application.pk, {("m", (("host", "a"),)): row.pk})
    try:
        with CaptureQueriesContext(connection) as queries:
            actions.metric_points_ingest(
                application=application, points=[point("m", 2, NOW, host="a")]
            )
    finally:
        series.forget_all()
    assert not [q for q in queries.captured_queries if "metricseries" in q["sql"]]
    assert [row[3] for row in stored(application)] == [1.0, 2.0]


@pytest.mark.django_db(transaction=True)
def test_two_writers_creating_the_same_series_at_once_make_one(make_application):
    application, _ = make_application("race")
    limits = Limits(max_labels=32, max_label_length=1024, max_series=150, retention_us=10**14)
    barrier = threading.Barrier(2)
    results = []

    def writer(offset: int) -> None:
        barrier.wait()
        try:
            results.append(
                actions.metric_points_ingest(
                    application=application,
                    points=[
                        point("m", offset, NOW - timedelta(seconds=offset), host=f"h{i}")
                        for i in range(100)
                    ],
                    limits=limits,
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    series.forget_all()
    assert sorted(r.accepted for r in results) == [100, 100]
    assert sum(r.series_created for r in results) == 100
    assert MetricSeries.objects.filter(application=application).count() == 100
    assert StoredPoint.objects.filter(series__application=application).count() == 200
