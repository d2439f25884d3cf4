"""prometheus: a Prometheus text-format or OpenMetrics exposition, parsed with prometheus_client's
own parsers, filtered by the allow- and deny-lists, with the collector's extra labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from math import isfinite

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from collectors.kinds import BodyError
from observability.choices import MetricKind
from observability.points import MetricPoint

KINDS = {
    "counter": MetricKind.COUNTER,
    "histogram": MetricKind.HISTOGRAM,
    "gaugehistogram": MetricKind.HISTOGRAM,
    "summary": MetricKind.SUMMARY,
}
OPENMETRICS = "application/openmetrics-text"


def is_openmetrics(content_type: str, text: str) -> bool:
    return content_type.startswith(OPENMETRICS) or text.rstrip().endswith("# EOF")


def points(
    body: bytes,
    *,
    content_type: str = "",
    time_us: int,
    allow: Sequence[str] = (),
    deny: Sequence[str] = (),
    extra_labels: Mapping[str, str] | None = None,
) -> list[MetricPoint]:
    """Every sample of the exposition as a point at `time_us`; raises BodyError for a body
    that is not an exposition. Labels the exposition shares with `extra_labels` are kept as
    `exported_<name>` (Prometheus' rule: the target's labels win)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"the body is not UTF-8 text: {exc}") from exc
    parse = openmetrics_families if is_openmetrics(content_type, text) else text_families
    extra = dict(extra_labels or {})
    keep = _selector(allow, deny)
    found: list[MetricPoint] = []
    try:
        for family in parse(text):
            kind = KINDS.get(family.type, MetricKind.GAUGE)
            for sample in family.samples:
                # NaN and ±Inf (a summary without observations) cannot be stored: skipped.
                if keep(sample.name, family.name) and isfinite(sample.value):
                    labels = _labelled(sample.labels, extra) if extra else sample.labels
                    found.append(
                        MetricPoint(sample.name, labels, float(sample.value), time_us, kind)
                    )
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise BodyError(f"the body is not a Prometheus exposition: {exc}") from exc
    return found


def _labelled(labels: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    merged = {(f"exported_{k}" if k in extra else k): v for k, v in labels.items()}
    merged.update(extra)
    return merged


def _selector(allow: Sequence[str], deny: Sequence[str]):
    """keep(sample name, family name): allowed (any allow pattern, or none given) and not
    denied; patterns are names or shell globs (`node_cpu_*`)."""

    def matches(patterns: Sequence[str], *names: str) -> bool:
        return any(fnmatchcase(name, p) for p in patterns for name in names)

    def keep(sample: str, family: str) -> bool:
        if allow and not matches(allow, sample, family):
            return False
        return not (deny and matches(deny, sample, family))

    return keep
