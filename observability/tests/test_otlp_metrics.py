"""POST /v1/metrics: OTLP/HTTP metrics in protobuf and JSON (gzip accepted), stored through the
same limits as /api/metrics/ingest and answered in OTLP's form."""

from __future__ import annotations

import gzip
import json
import math
import time

import pytest
from django.test import override_settings
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from accounts.actions import api_key_create
from observability.actions import ingest_key_create, ingest_key_revoke
from observability.models import MetricPoint, MetricSeries
from observability.tests.test_api import bearer

pytestmark = pytest.mark.django_db
URL = "/v1/metrics"
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


def attr(key: str, value) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def export(*, seconds_ago: float = 5, counter_values=(10, 25), gauge_value=0.5) -> bytes:
    """A gauge, a monotonic cumulative counter (two points) and a histogram."""
    nanos = int((time.time() - seconds_ago) * 1e9)
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.extend(
        [attr("service.name", "checkout"), attr("deployment.environment", "prod")]
    )
    metrics = resource.scope_metrics.add().metrics
    gauge = metrics.add(name="queue.depth", unit="1")
    gauge_point = gauge.gauge.data_points.add(time_unix_nano=nanos, as_double=gauge_value)
    gauge_point.attributes.append(attr("queue", "emails"))
    counter = metrics.add(name="orders_total")
    counter.sum.is_monotonic = True
    counter.sum.aggregation_temporality = CUMULATIVE
    for offset, value in enumerate(counter_values):
        counter.sum.data_points.add(time_unix_nano=nanos - 10**9 * (2 - offset), as_int=value)
    histogram = metrics.add(name="http.server.duration", unit="ms")
    histogram.histogram.aggregation_temporality = CUMULATIVE
    histogram.histogram.data_points.add(
        time_unix_nano=nanos, count=6, sum=420.0, bucket_counts=[1, 3, 2],
        explicit_bounds=[10, 100],
    )  # fmt: skip
    return request.SerializeToString()


def post(client, body: bytes, content_type: str = "application/x-protobuf", url=URL, **headers):
    return client.generic("POST", url, body, content_type=content_type, **headers)


def stored() -> dict[tuple[str, str], list[float]]:
    """{(name, labels as sorted JSON): values by time}."""
    found = {}
    for series in MetricSeries.objects.all():
        values = MetricPoint.objects.filter(series=series).order_by("time")
        key = (series.name, json.dumps(series.labels, sort_keys=True))
        found[key] = [p.value for p in values]
    return found


def labels(**extra: str) -> str:
    base = {"service_name": "checkout", "deployment_environment": "prod", **extra}
    return json.dumps(base, sort_keys=True)


def test_gauges_counters_and_histograms_are_stored_with_resource_labels(make_application):
    _, key = make_application("shop")
    response = post(bearer(key), gzip.compress(export()), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-protobuf"
    reply = ExportMetricsServiceResponse.FromString(response.content)
    assert not reply.HasField("partial_success")
    assert stored() == {
        ("queue_depth", labels(queue="emails")): [0.5],
        ("orders_total", labels()): [10.0, 25.0],  # the cumulative values as sent
        ("http_server_duration_count", labels()): [6.0],
        ("http_server_duration_sum", labels()): [420.0],
        ("http_server_duration_bucket", labels(le="10")): [1.0],
        ("http_server_duration_bucket", labels(le="100")): [4.0],
        ("http_server_duration_bucket", labels(le="+Inf")): [6.0],
    }
    kinds = dict(MetricSeries.objects.values_list("name", "kind").distinct())
    assert kinds["orders_total"] == "counter"
    assert kinds["queue_depth"] == "gauge"
    assert kinds["http_server_duration_bucket"] == "histogram"
    assert MetricSeries.objects.filter(name="http_server_duration_sum").get().unit == "ms"


def test_a_batch_in_the_json_encoding_written_by_hand_is_stored(make_application):
    _, key = make_application("shop")
    now = time.time_ns()
    document = {
        "resourceMetrics": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "cart"}}]},
            "scopeMetrics": [{"metrics": [
                {"name": "cart.items", "sum": {
                    "aggregationTemporality": 2, "isMonotonic": True,
                    "dataPoints": [{"asInt": "7", "timeUnixNano": str(now),
                                    "attributes": [{"key": "shard",
                                                    "value": {"intValue": "3"}}]}]}},
                {"name": "cart.load", "gauge": {"dataPoints": [{"asDouble": 0.25}]}},
            ]}],
        }]
    }  # fmt: skip
    response = post(bearer(key), json.dumps(document).encode(), "application/json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}
    series = {s.name: s for s in MetricSeries.objects.all()}
    assert series["cart_items"].labels == {"service_name": "cart", "shard": "3"}
    assert series["cart_items"].kind == "counter"
    assert MetricPoint.objects.get(series=series["cart_items"]).value == 7.0
    # No time: stored as now.
    assert (
        abs(MetricPoint.objects.get(series=series["cart_load"]).time.timestamp() - time.time()) < 60
    )


def test_points_breaking_a_limit_are_counted_as_a_partial_success(make_application):
    _, key = make_application("shop")
    request = ExportMetricsServiceRequest.FromString(export(gauge_value=math.nan))
    old = request.resource_metrics[0].scope_metrics[0].metrics.add(name="9starts_with_a_digit")
    old.gauge.data_points.add(as_double=1)
    response = post(bearer(key), request.SerializeToString())
    assert response.status_code == 200, response.content
    reply = ExportMetricsServiceResponse.FromString(response.content)
    assert reply.partial_success.rejected_data_points == 2
    assert "not finite" in reply.partial_success.error_message
    names = set(MetricSeries.objects.values_list("name", flat=True))
    assert "orders_total" in names and "queue_depth" not in names
    assert not any(name.startswith("9") for name in names)


@override_settings(METRICS_MAX_SERIES_PER_APPLICATION=2)
def test_series_beyond_the_application_limit_are_rejected_by_reason(make_application):
    _, key = make_application("shop")
    reply = ExportMetricsServiceResponse.FromString(post(bearer(key), export()).content)
    assert reply.partial_success.rejected_data_points == 5
    assert "series limit" in reply.partial_success.error_message or "limit of 2" in (
        reply.partial_success.error_message
    )
    assert MetricSeries.objects.count() == 2


def test_an_old_point_is_rejected_and_a_far_future_one_too(make_application):
    _, key = make_application("shop")
    old = post(bearer(key), export(seconds_ago=400 * 86400))
    ahead = post(bearer(key), export(seconds_ago=-3600))
    for response in (old, ahead):
        reply = ExportMetricsServiceResponse.FromString(response.content)
        assert reply.partial_success.rejected_data_points == 8  # every point
    assert not MetricPoint.objects.exists()


def test_a_malformed_protobuf_is_a_400_in_otlp_form_and_writes_nothing(make_application):
    _, key = make_application("shop")
    response = post(bearer(key), b"\xff\xff\xff not protobuf")
    assert response.status_code == 400
    status = status_pb2.Status.FromString(response.content)
    assert status.code == 3 and "cannot be decoded" in status.message
    assert not MetricSeries.objects.exists()


def test_malformed_json_and_a_wrong_content_type_are_refused(make_application):
    _, key = make_application("shop")
    response = post(bearer(key), b'{"resourceMetrics": 5}', "application/json")
    assert response.status_code == 400 and "malformed" in response.json()["message"]
    response = post(bearer(key), b"x", "text/plain")
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["message"]


@override_settings(INGEST_MAX_ITEMS=5)
def test_more_points_than_the_limit_refuse_the_whole_request(make_application):
    _, key = make_application("shop")
    response = post(bearer(key), export())
    assert response.status_code == 413
    assert "INGEST_MAX_ITEMS" in status_pb2.Status.FromString(response.content).message
    assert not MetricSeries.objects.exists() and not MetricPoint.objects.exists()


@override_settings(INGEST_MAX_BODY_BYTES=100)
def test_a_body_over_the_size_limit_is_a_413(make_application):
    _, key = make_application("shop")
    response = post(bearer(key), export())
    assert response.status_code == 413
    assert not MetricSeries.objects.exists()


def test_an_ingest_key_writes_only_its_own_application(make_application):
    _, key = make_application("shop")
    make_application("billing")
    response = post(bearer(key), export(), url=f"{URL}?application=billing")
    assert response.status_code == 403
    assert "'shop' only" in status_pb2.Status.FromString(response.content).message
    assert not MetricSeries.objects.exists()


def test_a_revoked_key_is_a_401(make_application):
    application, _ = make_application("shop")
    ingest_key, key = ingest_key_create(actor=None, application=application, name="ci")
    ingest_key_revoke(actor=None, ingest_key=ingest_key)
    response = post(bearer(key), export())
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not MetricSeries.objects.exists()


def test_a_user_api_key_names_the_application(make_application, make_user):
    make_application("shop")
    _, token = api_key_create(actor=None, user=make_user("operator"), name="ci")
    response = post(bearer(token), export(), url=f"{URL}?application=shop")
    assert response.status_code == 200, response.content
    assert MetricSeries.objects.filter(application__slug="shop").count() == 7
    response = post(bearer(token), export(), HTTP_X_NOC_APPLICATION="nowhere")
    assert response.status_code == 400
    assert "Unknown application" in status_pb2.Status.FromString(response.content).message
    response = post(bearer(token), export())
    assert response.status_code == 400


def test_a_viewer_may_not_write(make_application, make_user):
    make_application("shop")
    _, token = api_key_create(actor=None, user=make_user("viewer"), name="ci")
    response = post(bearer(token), export(), url=f"{URL}?application=shop")
    assert response.status_code == 403
    assert not MetricSeries.objects.exists()


def test_summaries_delta_sums_exponential_histograms_and_empty_points(make_application):
    _, key = make_application("shop")
    nanos = time.time_ns() - 10**9
    request = ExportMetricsServiceRequest()
    metrics = request.resource_metrics.add().scope_metrics.add().metrics
    summary = metrics.add(name="rpc.latency").summary.data_points.add(
        time_unix_nano=nanos, count=4, sum=2.0
    )
    summary.quantile_values.add(quantile=0.5, value=0.4)
    summary.quantile_values.add(quantile=0.99, value=0.9)
    delta = metrics.add(name="jobs.done").sum
    delta.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    delta.is_monotonic = True
    delta.data_points.add(time_unix_nano=nanos, as_int=3)
    delta.data_points.add(time_unix_nano=nanos, as_int=9, flags=1)  # no recorded value
    updown = metrics.add(name="pool.in_use").sum
    updown.aggregation_temporality = CUMULATIVE
    updown.data_points.add(time_unix_nano=nanos, as_int=-2)
    exponential = metrics.add(name="payload.size").exponential_histogram
    exponential.aggregation_temporality = CUMULATIVE
    exponential.data_points.add(time_unix_nano=nanos, count=5, sum=50.0, scale=1)
    response = post(bearer(key), request.SerializeToString())
    assert response.status_code == 200, response.content
    found = {
        (s.name, json.dumps(s.labels, sort_keys=True)): (s.kind, values)
        for s in MetricSeries.objects.all()
        for values in [[p.value for p in MetricPoint.objects.filter(series=s)]]
    }
    assert found == {
        ("rpc_latency_count", "{}"): ("summary", [4.0]),
        ("rpc_latency_sum", "{}"): ("summary", [2.0]),
        ("rpc_latency", '{"quantile": "0.5"}'): ("summary", [0.4]),
        ("rpc_latency", '{"quantile": "0.99"}'): ("summary", [0.9]),
        ("jobs_done", "{}"): ("delta", [3.0]),
        ("pool_in_use", "{}"): ("gauge", [-2.0]),
        ("payload_size_count", "{}"): ("histogram", [5.0]),
        ("payload_size_sum", "{}"): ("histogram", [50.0]),
    }


@pytest.mark.parametrize(
    "metric",
    [
        {"name": "", "gauge": {"dataPoints": [{"asDouble": 1}]}},
        {"name": "h", "histogram": {"dataPoints": [
            {"count": "3", "bucketCounts": ["1", "1", "1", "5"], "explicitBounds": [1]}]}},
        {"name": "h", "histogram": {"dataPoints": [{"count": "3", "sum": "NaN"}]}},
        {"name": "g", "gauge": {"dataPoints": [{"asDouble": "Infinity"}]}},
        {"name": "g", "gauge": {"dataPoints": [{"asInt": "9223372036854775807",
                                                "timeUnixNano": "18446744073709551615"}]}},
        {"name": "g", "gauge": {"dataPoints": [{"asDouble": 1, "attributes": [
            {"key": "deep", "value": {"kvlistValue": {"values": [
                {"key": "k", "value": {"arrayValue": {"values": [{"boolValue": True}]}}}]}}},
            {"key": "long", "value": {"stringValue": "x" * 5000}}]}]}},
        {"name": "nothing"},
    ],
    ids=["empty name", "more buckets than bounds", "nan sum", "infinite", "far future",
         "nested and long attributes", "no data"],
)  # fmt: skip
def test_odd_points_are_stored_or_counted_never_a_500(make_application, metric):
    _, key = make_application("shop")
    document = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}
    response = post(bearer(key), json.dumps(document).encode(), "application/json")
    assert response.status_code == 200, response.content
    rejected = int(response.json().get("partialSuccess", {}).get("rejectedDataPoints", 0))
    stored = MetricPoint.objects.count()
    assert stored + rejected >= (0 if metric["name"] == "nothing" else 1)
