"""What each kind makes of a body: pure functions, bodies produced by the real libraries."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from collectors.kinds import BodyError, http_json, ohlcv, prometheus

T = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds


def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    Counter("jobs_processed", "Jobs", ["queue"], registry=reg).labels(queue="mail").inc(3)
    Gauge("temperature_celsius", "Temp", ["room"], registry=reg).labels(room="a").set(21.5)
    return reg


def by_name(points) -> dict:
    return {(p.name, tuple(sorted(p.labels.items()))): p for p in points}


def test_a_text_exposition_becomes_one_point_per_sample_at_the_slot_time():
    found = by_name(prometheus.points(generate_latest(registry()), time_us=T))
    counter = found[("jobs_processed_total", (("queue", "mail"),))]
    assert (counter.value, counter.time_us, counter.kind) == (3.0, T, "counter")
    gauge = found[("temperature_celsius", (("room", "a"),))]
    assert (gauge.value, gauge.kind) == (21.5, "gauge")


def test_an_openmetrics_exposition_is_read_by_the_openmetrics_parser():
    body = generate_openmetrics(registry())
    found = by_name(prometheus.points(body, content_type="application/openmetrics-text", time_us=T))
    assert found[("jobs_processed_total", (("queue", "mail"),))].value == 3.0


def test_allow_and_deny_lists_take_names_and_globs():
    body = generate_latest(registry())
    allowed = prometheus.points(body, time_us=T, allow=["jobs_*"])
    assert {p.name for p in allowed} == {"jobs_processed_total", "jobs_processed_created"}
    denied = prometheus.points(body, time_us=T, deny=["jobs_processed*"])
    assert {p.name for p in denied} == {"temperature_celsius"}


def test_extra_labels_win_and_the_scraped_value_is_kept_as_exported():
    body = b'up{room="b",job="x"} 1\n'
    [point] = prometheus.points(body, time_us=T, extra_labels={"room": "lab", "env": "prod"})
    assert point.labels == {"exported_room": "b", "job": "x", "room": "lab", "env": "prod"}


@pytest.mark.parametrize(
    "body", [b"this is { not an exposition", b'up{a="1" 2\n', b"\xff\xfe\x00binary"]
)
def test_a_broken_body_is_a_body_error(body):
    with pytest.raises(BodyError):
        prometheus.points(body, time_us=T)


def test_http_json_takes_numbers_and_numeric_strings_and_names_the_paths_that_fail():
    body = b'{"queue": {"depth": 7, "rate": "2.5"}, "name": "x"}'
    reading = http_json.reading(
        body,
        paths={"queue_depth": "$.queue.depth", "queue_rate": "queue.rate", "bad": "$.name",
               "gone": "$.missing"},
        time_us=T, labels={"env": "prod"},
    )  # fmt: skip
    assert {(p.name, p.value) for p in reading.points} == {
        ("queue_depth", 7.0),
        ("queue_rate", 2.5),
    }
    assert "$.name" in reading.error and "$.missing" in reading.error


def test_ohlcv_buckets_close_when_a_price_of_a_later_bucket_arrives():
    minute = 60_000_000
    state: dict = {}
    closed_buckets = []
    for offset_s, price in [(0, 10), (15, 12), (30, 9), (45, 11), (60, 20), (75, 18)]:
        state, closed = ohlcv.aggregate(state, price, T + offset_s * 1_000_000, "1m")
        if closed:
            closed_buckets.append(closed)
    assert closed_buckets == [
        {"start": T, "open": 10, "high": 12, "low": 9, "close": 11, "count": 4}
    ]
    assert state == {
        "start": T + minute,
        "open": 20,
        "high": 20,
        "low": 18,
        "close": 18,
        "count": 2,
    }


def test_ohlcv_buckets_are_aligned_on_the_epoch():
    assert ohlcv.bucket_start(T + 7 * 60_000_000 + 5, "5m") == T + 5 * 60_000_000
    assert ohlcv.bucket_start(T + 5 * 3_600_000_000, "4h") == T + 4 * 3_600_000_000


def test_samples_that_are_not_finite_are_skipped():
    body = b'rpc_seconds{quantile="0.5"} NaN\nrpc_seconds_count 0\nup +Inf\n'
    assert [p.name for p in prometheus.points(body, time_us=T)] == ["rpc_seconds_count"]
