"""Reads: the latency quantile estimate, uptime windows over the rollups, fleet gauges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from noc.models import RollupWatermark
from services import queries
from services.choices import LATENCY_BUCKETS_MS
from services.models import CheckResult
from services.tests.fixtures import ensure_partitions, refresh_rollups
from services.timeseries import CHECK_RESULTS, ROLLUP_TABLE


def buckets(*counts: int) -> list[tuple[int, int]]:
    return list(zip(LATENCY_BUCKETS_MS, counts, strict=True))


def test_the_quantile_interpolates_inside_its_bucket():
    # 10 observations, 5 up to 100 ms and 5 between 100 and 250: rank 9.5 is 4.5/5 into it.
    cumulative = buckets(0, 5, 10, 10, 10, 10, 10, 10)
    assert queries.histogram_quantile(0.95, 10, cumulative) == pytest.approx(100 + 150 * 0.9)


def test_the_quantile_stays_within_what_was_observed():
    same = buckets(4, 4, 4, 4, 4, 4, 4, 4)
    assert queries.histogram_quantile(0.95, 4, same, 20.0, 20.0) == 20.0
    # Without the observed range the whole 0-50 bucket is assumed.
    assert queries.histogram_quantile(0.95, 4, same) == pytest.approx(47.5)


def test_the_open_bucket_above_the_last_bound_ends_at_the_maximum():
    # 2 of 4 slower than 10 s, the slowest 20 s: rank 3.8 is 1.8/2 between 10 s and 20 s.
    cumulative = buckets(2, 2, 2, 2, 2, 2, 2, 2)
    assert queries.histogram_quantile(0.95, 4, cumulative, 10.0, 20_000.0) == pytest.approx(19_000)
    assert queries.histogram_quantile(0.95, 4, cumulative) == 10_000


def test_no_observations_has_no_quantile():
    assert queries.histogram_quantile(0.95, 0, buckets(0, 0, 0, 0, 0, 0, 0, 0)) is None


def test_an_unknown_window_is_refused():
    with pytest.raises(queries.UnknownWindow, match="'1y'"):
        queries.window_since("1y", timezone.now())


@pytest.mark.django_db
def test_uptime_windows_and_ratios_over_the_rollups(make_service):
    make_service(id="web")
    make_service(id="db")
    now = timezone.now()
    rows = [
        ("web", 5, "up", 10.0),
        ("web", 4, "down", None),
        ("web", 3, "degraded", 900.0),
        ("web", 60 * 30, "down", None),  # 30 hours ago: only in the 7d window
        ("db", 2, "up", 1.0),
    ]
    for spec in (CHECK_RESULTS, ROLLUP_TABLE):
        ensure_partitions(spec, now - timedelta(days=2), now)
    CheckResult.objects.bulk_create(
        CheckResult(service_id=sid, time=now - timedelta(minutes=m), status=st, response_time_ms=ms)
        for sid, m, st, ms in rows
    )
    RollupWatermark.objects.update_or_create(
        name="services_checkrollup", defaults={"upto": now - timedelta(days=2)}
    )
    refresh_rollups("services_checkrollup")

    day = queries.service_uptime("web", "24h")
    week = queries.service_uptime("web", "7d")

    assert (day.checks, day.failures) == (3, 1)
    assert day.uptime_percent == pytest.approx(200 / 3)
    assert day.response_time_avg_ms == pytest.approx(455.0)
    assert (week.checks, week.failures) == (4, 2)
    assert week.since < day.since
    assert queries.uptime_ratios("24h") == {"web": pytest.approx(2 / 3), "db": 1.0}


@pytest.mark.django_db
def test_recent_results_are_the_newest_of_one_service(make_service):
    make_service(id="web")
    make_service(id="db")
    now = timezone.now()
    CheckResult.objects.bulk_create(
        [
            CheckResult(service_id="web", time=now - timedelta(minutes=i), status="up")
            for i in range(5)
        ]
        + [CheckResult(service_id="db", time=now, status="down")]
    )
    recent = list(queries.recent_results("web", limit=3))
    assert [r.time for r in recent] == [now - timedelta(minutes=i) for i in range(3)]


@pytest.mark.django_db
def test_uptime_percent_is_exact_to_four_decimals(make_service):
    now = timezone.now()
    for spec in (CHECK_RESULTS, ROLLUP_TABLE):
        ensure_partitions(spec, now - timedelta(hours=3), now)
    # web: 57 good of 100, which (57 / 100) * 100 in floats makes 56.99999999999999;
    # db: 57 good of 99, 57.57575757575758 in floats.
    for service_id, checks in (("web", 100), ("db", 99)):
        make_service(id=service_id)
        CheckResult.objects.bulk_create(
            CheckResult(
                service_id=service_id, time=now - timedelta(minutes=1 + i),
                status="up" if i < 57 else "down", response_time_ms=10.0 if i < 57 else None,
            )
            for i in range(checks)
        )  # fmt: skip
    RollupWatermark.objects.update_or_create(
        name="services_checkrollup", defaults={"upto": now - timedelta(hours=3)}
    )
    refresh_rollups("services_checkrollup")
    assert queries.service_uptime("web", "24h").uptime_percent == 57.0
    assert queries.service_uptime("db", "24h").uptime_percent == 57.5758
