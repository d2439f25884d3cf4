"""What ingestion takes and answers: `MetricPoint`, the per-point limits and `IngestResult`.

Every decoder (the JSON API, OTLP, collectors) turns its input into `MetricPoint`s and hands
them to `observability.actions.metric_points_ingest`, which applies the same limits to all.
Times are integers (microseconds since the Unix epoch) so the hot path never builds datetimes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.conf import settings

from observability.choices import MetricKind, Rejection

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_NAME_LENGTH = 200
MAX_LABEL_NAME_LENGTH = 128
FUTURE_US = 10 * 60 * 1_000_000  # points further ahead than this are refused
MAX_EXAMPLES = 10  # rejection messages returned with the counts


class MetricPoint(NamedTuple):
    """One sample to store.

    name: Prometheus syntax (`[a-zA-Z_:][a-zA-Z0-9_:]*`, at most 200 characters).
    labels: label name (`[a-zA-Z_][a-zA-Z0-9_]*`) to string value.
    value: a finite float.
    time_us: microseconds since the Unix epoch; None means "now".
    kind, unit: recorded when the series is first seen (later values do not change them).
    """

    name: str
    labels: Mapping[str, str]
    value: float
    time_us: int | None = None
    kind: str = MetricKind.GAUGE
    unit: str = ""

    @classmethod
    def at(
        cls,
        name: str,
        value: float,
        *,
        labels: Mapping[str, str] | None = None,
        time: datetime | None = None,
        kind: str = MetricKind.GAUGE,
        unit: str = "",
    ) -> MetricPoint:
        """Convenience for callers holding datetimes (collectors, tests)."""
        return cls(name, labels or {}, value, to_us(time) if time else None, kind, unit)


def to_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (naive ones are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    """The per-point and per-series limits, from the settings unless a test overrides them."""

    max_labels: int
    max_label_length: int
    max_series: int
    retention_us: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_labels=settings.METRICS_MAX_LABELS,
            max_label_length=settings.METRICS_MAX_LABEL_LENGTH,
            max_series=settings.METRICS_MAX_SERIES_PER_APPLICATION,
            retention_us=settings.METRICS_RETENTION_DAYS * 86_400 * 1_000_000,
        )


def series_problem(name: str, labels: Mapping[str, str], limits: Limits) -> tuple[str, str] | None:
    """(reason, message) when a series identity breaks a limit, else None."""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not NAME.fullmatch(name):
        return Rejection.INVALID_NAME, f"metric name {str(name)[:80]!r} is not a Prometheus name"
    if len(labels) > limits.max_labels:
        return (
            Rejection.TOO_MANY_LABELS,
            f"{name}: {len(labels)} labels, more than the limit of {limits.max_labels}",
        )
    for key, value in labels.items():
        if (
            not isinstance(key, str)
            or len(key) > MAX_LABEL_NAME_LENGTH
            or not LABEL_NAME.fullmatch(key)
            or key.startswith("__")
        ):
            return Rejection.INVALID_LABELS, f"{name}: label name {str(key)[:80]!r} is invalid"
        if not isinstance(value, str):
            return Rejection.INVALID_LABELS, f"{name}: label {key} must be a string"
        if len(value) > limits.max_label_length:
            return (
                Rejection.INVALID_LABELS,
                f"{name}: label {key} is longer than {limits.max_label_length} characters",
            )
        if "\x00" in value or not (value.isascii() or _encodable(value)):
            return Rejection.INVALID_LABELS, f"{name}: label {key} is not storable text"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        return False
    return True


@dataclass
class IngestResult:
    """What an ingestion wrote: counts, rejection counts by reason (`Rejection` values) and the
    first few rejection messages."""

    accepted: int = 0
    rejected: int = 0
    rejections: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    series_created: int = 0

    def reject(self, reason: str, message: str, count: int = 1) -> None:
        self.rejected += count
        self.rejections[str(reason)] += count
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(message)

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejections": dict(self.rejections),
            "errors": self.examples,
        }
