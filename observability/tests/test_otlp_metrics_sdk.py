"""The real OpenTelemetry Python SDK pushes metrics to a running server over real HTTP
(OTLP/HTTP protobuf, gzip) and the query API reads them back."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from observability.models import MetricSeries


def values(client, name: str, agg: str, **params) -> list[float]:
    response = client.get(
        "/api/metrics/query", {"name": name, "agg": agg, "from": "-10m", "step": "1h", **params}
    )
    assert response.status_code == 200, response.content
    return [p["value"] for s in response.json()["series"] for p in s["points"]]


@pytest.mark.django_db(transaction=True)
def test_the_sdk_pushes_a_counter_and_a_histogram_that_the_query_api_reads(
    live_server, make_application, client_as
):
    _, key = make_application("shop")
    exporter = OTLPMetricExporter(
        endpoint=f"{live_server.url}/v1/metrics",
        headers={"Authorization": f"Bearer {key}"},
        compression=Compression.Gzip,
        timeout=10,
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "checkout"}), metric_readers=[reader]
    )
    meter = provider.get_meter("checkout")
    orders = meter.create_counter("orders.placed")
    latency = meter.create_histogram("http.server.duration", unit="ms")
    orders.add(3, {"region": "eu"})
    orders.add(4, {"region": "eu"})
    for ms in (5, 50, 500):
        latency.record(ms, {"route": "/pay"})
    assert provider.force_flush(10_000)
    orders.add(5, {"region": "eu"})
    assert provider.force_flush(10_000)
    provider.shutdown()

    series = MetricSeries.objects.get(name="orders_placed")
    assert series.kind == "counter"
    assert series.labels["service_name"] == "checkout" and series.labels["region"] == "eu"
    viewer = client_as("viewer")
    # Cumulative, as the SDK sends it: 7 after the first export, 12 after the second.
    assert max(values(viewer, "orders_placed", "max", labels="region=eu")) == 12
    # Two flushes and the export of shutdown: three points.
    assert sum(values(viewer, "orders_placed", "count", application="shop")) == 3
    assert max(values(viewer, "http_server_duration_count", "last", labels="route=/pay")) == 3
    assert max(values(viewer, "http_server_duration_sum", "last")) == 555
    buckets = {
        s.labels["le"]: s for s in MetricSeries.objects.filter(name="http_server_duration_bucket")
    }
    assert {"5", "50", "500", "+Inf"} <= set(buckets)
