"""OTLP metrics: an `ExportMetricsServiceRequest` (protobuf or OTLP/JSON) into `MetricPoint`s
for `observability.actions.metric_points_ingest`, which applies the same limits as the JSON API.

Names and attribute keys take Prometheus' syntax the way Prometheus' own OTLP receiver does:
every character outside `[a-zA-Z0-9_:]` becomes `_` (`http.server.duration` →
`http_server_duration`, `service.name` → `service_name`); a name that still is not one (it
starts with a digit) is counted as rejected. Labels are the resource's attributes (its
`service.name` included), then the point's own, which win. What each kind becomes:

- gauge: one `gauge` series per attribute set;
- sum: monotonic and cumulative → `counter` (the cumulative value as sent); not monotonic →
  `gauge`; delta temporality → `delta` (increments);
- histogram: `<name>_count`, `<name>_sum` and `<name>_bucket{le="…"}` (cumulative bucket counts,
  Prometheus' layout, `le="+Inf"` included), kind `histogram` (or `delta`);
- exponential histogram: `<name>_count` and `<name>_sum` only;
- summary: `<name>_count`, `<name>_sum` and `<name>{quantile="…"}`, kind `summary`.

Data points flagged "no recorded value" are skipped.
"""

from __future__ import annotations

import json
import re

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from observability.choices import MetricKind
from observability.ingestion import check_item_count
from observability.otlp.logs import any_value
from observability.otlp.logs import parse as parse_export
from observability.points import MetricPoint

DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
NO_RECORDED_VALUE = 1  # DataPointFlags.FLAG_NO_RECORDED_VALUE
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(name: str) -> str:
    return _INVALID.sub("_", name)


_label_names: dict[str, str] = {}


def label_name(key: str) -> str:
    """Attribute keys repeat on every point: each is translated once per process."""
    name = _label_names.get(key)
    if name is None:
        if len(_label_names) > 10_000:
            _label_names.clear()
        name = _label_names[key] = _LABEL_INVALID.sub("_", key)
    return name


def label_value(value) -> str:
    found = any_value(value)
    if isinstance(found, str):
        return found
    if isinstance(found, bool):
        return "true" if found else "false"
    if isinstance(found, int | float):
        return repr(found)
    return "" if found is None else json.dumps(found, ensure_ascii=False, sort_keys=True)


def labels_of(attributes, base: dict[str, str]) -> dict[str, str]:
    """The hot loop of OTLP ingestion: string attributes take the short way."""
    if not attributes:
        return base
    labels = dict(base)
    names = _label_names
    for kv in attributes:
        key, value = kv.key, kv.value
        name = names.get(key) or label_name(key)
        if value.WhichOneof("value") == "string_value":
            labels[name] = value.string_value
        else:
            labels[name] = label_value(value)
    return labels


def bound_text(bound: float) -> str:
    """`le` as Prometheus writes it: 0.5, 1, 2.5, +Inf."""
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def parse(body: bytes, encoding: str) -> ExportMetricsServiceRequest:
    return parse_export(body, encoding, ExportMetricsServiceRequest())


def points_of(request: ExportMetricsServiceRequest) -> list[MetricPoint]:
    """Every point of the request, in order. More points than INGEST_MAX_ITEMS (histogram
    buckets count one each) refuse the request with a 413 before anything is written."""
    points: list[MetricPoint] = []
    for resource_metrics in request.resource_metrics:
        resource = labels_of(resource_metrics.resource.attributes, {})
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _metric_points(metric, resource, points)
                check_item_count(len(points))
    return points


def _time(nanos: int) -> int | None:
    return nanos // 1000 if nanos else None


def _number(point) -> float:
    return point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)


def _metric_points(metric, resource: dict[str, str], out: list) -> None:
    name, unit = metric_name(metric.name), metric.unit
    which = metric.WhichOneof("data")
    if which == "gauge":
        _numbers(name, unit, metric.gauge.data_points, MetricKind.GAUGE, resource, out)
    elif which == "sum":
        data = metric.sum
        if data.aggregation_temporality == DELTA:
            kind = MetricKind.DELTA
        else:
            kind = MetricKind.COUNTER if data.is_monotonic else MetricKind.GAUGE
        _numbers(name, unit, data.data_points, kind, resource, out)
    elif which == "histogram":
        data = metric.histogram
        kind = MetricKind.DELTA if data.aggregation_temporality == DELTA else MetricKind.HISTOGRAM
        for point in data.data_points:
            if not point.flags & NO_RECORDED_VALUE:
                _histogram(name, unit, point, kind, resource, out)
    elif which == "exponential_histogram":
        data = metric.exponential_histogram
        kind = MetricKind.DELTA if data.aggregation_temporality == DELTA else MetricKind.HISTOGRAM
        for point in data.data_points:
            if not point.flags & NO_RECORDED_VALUE:
                _count_and_sum(name, unit, point, kind, resource, out)
    elif which == "summary":
        for point in metric.summary.data_points:
            if point.flags & NO_RECORDED_VALUE:
                continue
            labels = _count_and_sum(name, unit, point, MetricKind.SUMMARY, resource, out)
            time_us = _time(point.time_unix_nano)
            for quantile in point.quantile_values:
                quantile_labels = {**labels, "quantile": bound_text(quantile.quantile)}
                out.append(
                    MetricPoint(name, quantile_labels, quantile.value, time_us,
                                MetricKind.SUMMARY, unit)
                )  # fmt: skip


def _numbers(name, unit, data_points, kind, resource, out: list) -> None:
    """The hot loop for gauges and sums: `labels_of`, `_number` and `_time` inlined."""
    append, names = out.append, _label_names
    for point in data_points:
        if point.flags & NO_RECORDED_VALUE:
            continue
        labels = dict(resource)
        for kv in point.attributes:
            key, value = kv.key, kv.value
            if value.WhichOneof("value") == "string_value":
                labels[names.get(key) or label_name(key)] = value.string_value
            else:
                labels[names.get(key) or label_name(key)] = label_value(value)
        number = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
        nanos = point.time_unix_nano
        append(
            MetricPoint(name, labels, float(number), nanos // 1000 if nanos else None, kind, unit)
        )


def _count_and_sum(name, unit, point, kind, resource, out: list) -> dict[str, str]:
    labels = labels_of(point.attributes, resource)
    time_us = _time(point.time_unix_nano)
    out.append(MetricPoint(f"{name}_count", labels, float(point.count), time_us, kind, unit))
    out.append(MetricPoint(f"{name}_sum", labels, point.sum, time_us, kind, unit))
    return labels


def _histogram(name, unit, point, kind, resource, out: list) -> None:
    labels = _count_and_sum(name, unit, point, kind, resource, out)
    time_us = _time(point.time_unix_nano)
    bucket = f"{name}_bucket"
    cumulative = 0
    bounds = point.explicit_bounds
    for index, count in enumerate(point.bucket_counts):
        cumulative += count
        le = bound_text(bounds[index]) if index < len(bounds) else "+Inf"
        bucket_labels = {**labels, "le": le}
        out.append(MetricPoint(bucket, bucket_labels, float(cumulative), time_us, kind, unit))
    if not point.bucket_counts:
        out.append(
            MetricPoint(bucket, {**labels, "le": "+Inf"}, float(point.count), time_us, kind, unit)
        )
