"""A metric SLO fed by the OpenTelemetry Python SDK: a MeterProvider exports counters and a
histogram through OTLPMetricExporter over real HTTP to /v1/metrics of a live server, restarts
(its counters start again from zero), and the SLOs count the events between the exports."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from accounts.choices import Role
from observability.models import MetricSeries
from slos import actions
from slos.models import SLO

SERVICE = {"service_name": "checkout"}


class App:
    """One run of an instrumented process: its own MeterProvider, whose counters start at 0."""

    def __init__(self, url: str, key: str) -> None:
        exporter = OTLPMetricExporter(
            endpoint=f"{url}/v1/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        # Exports only when flushed: each flush is one request with the cumulative values.
        self.reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        self.provider = MeterProvider(
            resource=Resource.create({"service.name": "checkout"}),
            metric_readers=[self.reader],
            views=[
                View(
                    instrument_name="http.server.duration",
                    aggregation=ExplicitBucketHistogramAggregation([0.1, 0.25, 0.5]),
                )
            ],
        )
        meter = self.provider.get_meter("checkout")
        self.requests = meter.create_counter("http.requests")
        self.good = meter.create_counter("http.requests.good")
        self.duration = meter.create_histogram("http.server.duration", unit="s")

    def serve(self, *, good: int, bad: int, durations: list[float]) -> None:
        self.requests.add(good + bad)
        self.good.add(good)
        for seconds in durations:
            self.duration.record(seconds)

    def export(self) -> None:
        assert self.provider.force_flush(timeout_millis=20_000)

    def stop(self) -> None:
        self.provider.shutdown()


@pytest.mark.django_db(transaction=True)
def test_slos_count_the_events_the_sdk_exports_across_a_restart(
    live_server, make_application, client_as
):
    _application, key = make_application("shop")
    first = App(live_server.url, key)
    first.serve(good=9, bad=1, durations=[0.05, 0.2, 0.4])
    first.export()  # a series' first point counts nothing
    first.serve(good=8, bad=2, durations=[0.05, 0.05, 0.2, 0.3, 0.6])
    first.export()  # requests 10 → 20, good 9 → 17; ≤ 0.25 s 2 → 5, count 3 → 8
    first.stop()
    restarted = App(live_server.url, key)
    restarted.serve(good=4, bad=0, durations=[0.1, 0.7])
    restarted.export()  # a reset: requests 4, good 4; ≤ 0.25 s 1, count 2
    restarted.stop()
    stored = set(MetricSeries.objects.values_list("name", flat=True))
    assert {"http_requests", "http_requests_good", "http_server_duration_bucket"} <= stored

    admin = client_as(Role.ADMIN)
    common = {"target": "90", "window": "24h"}
    selector = {"application": "shop", "labels": SERVICE}
    for body in (
        {"id": "success", "name": "Success", "sli_type": "ratio",
         "good_metric": {**selector, "name": "http_requests_good"},
         "total_metric": {**selector, "name": "http_requests"}},
        {"id": "fast", "name": "Fast", "sli_type": "histogram", "histogram_threshold": 0.25,
         "histogram_metric": {**selector, "name": "http_server_duration"}},
    ):  # fmt: skip
        response = admin.post("/api/slos/", {**common, **body}, format="json")
        assert response.status_code == 201, response.content
    # Points are stamped when the SDK collected them: evaluate in the minute after.
    assert actions.slos_evaluate(now=timezone.now() + timedelta(minutes=1)) == 2
    success, fast = SLO.objects.get(id="success"), SLO.objects.get(id="fast")
    # Requests 10 → 20 (+10), then 4 after the restart (+4); good 9 → 17 (+8), then 4 (+4).
    assert success.current_value == 85.7143  # 12 of 14
    assert success.burn_rate == 1.4286  # 2 bad of 14, / 0.1
    assert success.compliant is False
    # At or under 0.25 s: 2 → 5 (+3), then 1 (+1); all: 3 → 8 (+5), then 2 (+2).
    assert fast.current_value == 57.1429  # 4 of 7
