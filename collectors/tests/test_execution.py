"""Executions against real local servers: what is stored, what becomes the run's error, and
that an execution delivered twice or after a stop writes nothing more."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from collectors import actions, execution
from collectors.actions import HOST
from collectors.models import CollectorRun
from collectors.tests.fixtures import execute
from observability.models import MetricPoint, MetricSeries

pytestmark = pytest.mark.django_db


def stored(application, name: str) -> dict:
    """{labels as sorted tuple: [(time, value)]} of the application's series `name`."""
    found = {}
    for series in MetricSeries.objects.filter(application=application, name=name):
        points = MetricPoint.objects.filter(series=series).order_by("time")
        found[tuple(sorted(series.labels.items()))] = [(p.time, p.value) for p in points]
    return found


def start(collector) -> CollectorRun:
    return actions.collector_run_start(actor=None, collector=collector)


def test_a_prometheus_exposition_served_by_prometheus_client_is_stored(
    make_collector, exposition, application
):
    collector = make_collector(url=exposition, extra_labels={"env": "test"})
    run = execute(start(collector))
    jobs = stored(application, "jobs_processed_total")
    assert {labels: [v for _, v in points] for labels, points in jobs.items()} == {
        (("env", "test"), ("queue", "mail")): [3.0],
        (("env", "test"), ("queue", "sms")): [5.0],
    }
    [(labels, [(_time, value)])] = stored(application, "temperature_celsius").items()
    assert (labels, value) == ((("env", "test"),), 21.5)
    buckets = stored(application, "request_seconds_bucket")
    assert {dict(k)["le"]: v[0][1] for k, v in buckets.items()} == {"0.1": 1, "1.0": 2, "+Inf": 2}
    assert MetricSeries.objects.get(name="jobs_processed_total", labels__queue="mail").kind == (
        "counter"
    )
    assert run.samples == MetricPoint.objects.count() > 8
    assert (run.host, run.pid, run.executions, run.last_error) == (HOST, os.getpid(), 1, "")
    assert run.claimed_slot is None and run.lease_until is None
    assert run.last_slot is not None and 0 <= run.last_lag_ms < 5000


def test_an_execution_delivered_twice_is_stored_once(make_collector, exposition):
    run = start(make_collector(url=exposition))
    CollectorRun.objects.filter(pk=run.pk).update(next_run_at=timezone.now())
    slots = actions.collector_runs_claim_due()
    execution.run_slots(slots)
    points, samples = MetricPoint.objects.count(), CollectorRun.objects.get(pk=run.pk).samples
    assert execution.run_slots(slots) == []  # the broker delivered the batch again
    run.refresh_from_db()
    assert (MetricPoint.objects.count(), run.samples, run.executions) == (points, samples, 1)


def test_an_execution_of_a_run_stopped_meanwhile_writes_nothing(make_collector, exposition):
    run = start(make_collector(url=exposition))
    CollectorRun.objects.filter(pk=run.pk).update(next_run_at=timezone.now())
    slots = actions.collector_runs_claim_due()
    assert actions.collector_run_stop(actor=None, run=run)
    assert execution.run_slots(slots) == []
    assert not MetricPoint.objects.exists()


def test_a_broken_body_is_the_runs_error_and_the_run_goes_on(make_collector, json_api):
    json_api.answer(b"<html>this is not an exposition {", content_type="text/html")
    run = execute(start(make_collector(url=f"{json_api.url}/metrics")))
    assert run.status == "running" and run.consecutive_failures == 1
    assert "not a Prometheus exposition" in run.last_error
    json_api.answer(b"up 1\n", content_type="text/plain")
    run = execute(run)
    assert (run.consecutive_failures, run.samples, run.executions) == (0, 1, 2)
    assert "not a Prometheus exposition" in run.last_error  # kept for the record, with its time


def test_a_body_over_the_size_limit_is_refused(make_collector, json_api):
    json_api.answer(b"up 1\n" * 1000, content_type="text/plain")
    run = execute(start(make_collector(url=json_api.url, max_body_bytes=1000)))
    assert "over" in run.last_error and "1,000 bytes" in run.last_error
    assert run.samples == 0 and not MetricPoint.objects.exists()


def test_a_target_answering_an_error_status_is_the_runs_error(make_collector, json_api):
    json_api.answer(b"nope", status=503)
    run = execute(start(make_collector(url=json_api.url)))
    assert run.last_error == "the target answered HTTP 503"


def test_the_bearer_token_is_sent_from_its_encrypted_copy_or_its_variable(
    make_collector, json_api, monkeypatch
):
    json_api.answer(b"up 1\n", content_type="text/plain")
    collector = make_collector(url=json_api.url, token="s3cret")
    assert "s3cret" not in collector.token
    execute(start(collector))
    monkeypatch.setenv("COLLECTOR_TOKEN_TEST", "from-env")
    other = make_collector(url=json_api.url, bearer_token_env="COLLECTOR_TOKEN_TEST")
    execute(start(other))
    assert [auth for _, auth in json_api.seen] == ["Bearer s3cret", "Bearer from-env"]


def test_a_token_variable_outside_collector_token_names_is_never_read(make_collector, json_api):
    collector = make_collector(url=json_api.url)
    collector.bearer_token_env = "SECRET_KEY"  # written around validation
    collector.save(update_fields=["bearer_token_env"])
    run = execute(start(collector))
    assert "not a COLLECTOR_TOKEN_* variable" in run.last_error and json_api.seen == []


def test_an_unset_token_variable_is_the_runs_error(make_collector, json_api):
    collector = make_collector(url=json_api.url, bearer_token_env="COLLECTOR_TOKEN_UNSET_TEST")
    run = execute(start(collector))
    assert "COLLECTOR_TOKEN_UNSET_TEST is not set" in run.last_error and json_api.seen == []


def test_the_address_guard_refuses_a_private_target_unless_allowed(make_collector, json_api):
    with pytest.raises(ValidationError) as refused:
        make_collector(url=json_api.url, allow_private=False)
    assert "url" in refused.value.message_dict
    # A name that resolves to a refused address is caught when it is fetched.
    port = json_api.url.rsplit(":", 1)[1]
    collector = make_collector(url=f"http://localhost:{port}/", allow_private=True)
    collector.allow_private = False
    collector.save(update_fields=["allow_private"])
    run = execute(start(collector))
    assert "refused" in run.last_error and json_api.seen == []


def test_http_json_stores_the_numbers_at_its_paths(make_collector, json_api, application):
    json_api.answer({"queue": {"depth": 7, "workers": [{"busy": 3}]}, "status": "ok"})
    collector = make_collector(
        kind="http_json", url=f"{json_api.url}/stats", extra_labels={"site": "a"},
        json_paths={"queue_depth": "$.queue.depth", "busy_workers": "$.queue.workers[0].busy"},
    )  # fmt: skip
    run = execute(start(collector))
    assert stored(application, "queue_depth")[(("site", "a"),)][0][1] == 7
    assert stored(application, "busy_workers")[(("site", "a"),)][0][1] == 3
    assert (run.samples, run.last_error) == (2, "")


def test_ohlcv_aggregates_a_moving_price_into_hand_computed_buckets(
    make_collector, json_api, application
):
    """A price source moving on every poll; polls every 20 s over three minutes. The buckets
    of 00:00 and 00:01 are final (a poll of a later minute arrived); 00:02 is still open."""
    prices = [100, 104, 98, 101, 103, 107, 99, 102, 110]
    for price in prices:
        json_api.answer({"symbol": "ETHUSDT", "price": str(price)})
    collector = make_collector(
        kind="ohlcv", url=f"{json_api.url}/price?symbol={{symbol}}", price_path="$.price",
        symbol="ETHUSDT", timeframe="1m", interval_seconds=20,
    )  # fmt: skip
    run = start(collector)
    t0 = (timezone.now() - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    for i in range(len(prices)):
        run = execute(run, at=t0 + timedelta(seconds=20 * i))
    labels = (("symbol", "ETHUSDT"), ("timeframe", "1m"))
    minute = timedelta(minutes=1)
    expected = {
        "ohlcv_open": [(t0, 100), (t0 + minute, 101)],
        "ohlcv_high": [(t0, 104), (t0 + minute, 107)],
        "ohlcv_low": [(t0, 98), (t0 + minute, 101)],
        "ohlcv_close": [(t0, 98), (t0 + minute, 107)],
        "ohlcv_count": [(t0, 3), (t0 + minute, 3)],
    }
    for name, points in expected.items():
        assert stored(application, name) == {labels: points}, name
    assert run.state == {"start": pytest.approx(int((t0 + 2 * minute).timestamp() * 1e6)),
                         "open": 99, "high": 110, "low": 99, "close": 110, "count": 3}  # fmt: skip
    assert [path for path, _ in json_api.seen] == ["/price?symbol=ETHUSDT"] * len(prices)
    assert run.samples == 10


def test_ohlcv_closes_a_passed_bucket_even_when_the_poll_fails(make_collector, json_api):
    collector = make_collector(
        kind="ohlcv", url=f"{json_api.url}/p/{{symbol}}", price_path="price", symbol="BTC",
        timeframe="1m", interval_seconds=30,
    )  # fmt: skip
    t0 = (timezone.now() - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    json_api.answer({"price": 5})
    run = execute(start(collector), at=t0)
    json_api.answer(b"down", status=502)
    run = execute(run, at=t0 + timedelta(seconds=60))
    assert run.last_error == "the target answered HTTP 502" and run.state == {}
    assert MetricSeries.objects.filter(name="ohlcv_close").get().labels == {
        "symbol": "BTC", "timeframe": "1m"
    }  # fmt: skip


def test_one_batch_stores_each_runs_samples_and_counts_them_per_run(
    make_collector, exposition, json_api
):
    json_api.answer(b"up 1\nqueue_depth 4\n", content_type="text/plain")
    first = start(make_collector(url=exposition, extra_labels={"target": "a"}))
    second = start(make_collector(url=json_api.url, extra_labels={"target": "b"}))
    at = timezone.now()
    CollectorRun.objects.update(next_run_at=at)
    execution.run_slots(actions.collector_runs_claim_due(now=at))
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.samples == 2 and first.samples > 8
    assert first.samples + second.samples == MetricPoint.objects.count()


def test_samples_refused_by_the_series_limit_are_the_runs_error(make_collector, json_api, settings):
    settings.METRICS_MAX_SERIES_PER_APPLICATION = 2
    json_api.answer(b"a 1\nb 2\nc 3\nd 4\n", content_type="text/plain")
    run = execute(start(make_collector(url=json_api.url)))
    assert run.samples == 2 and MetricPoint.objects.count() == 2
    assert run.last_error.startswith("2 of 4 samples refused: ")
    assert "limit of 2 series" in run.last_error and run.consecutive_failures == 1
