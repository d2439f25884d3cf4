"""What each kind of collector makes of a fetched body: metric points (and, for ohlcv, the
bucket it carries over to the next execution). Pure functions: no network, no database."""

from __future__ import annotations

from dataclasses import dataclass, field

from observability.points import MetricPoint


class BodyError(ValueError):
    """The body cannot be read as the collector's kind expects: the execution's error."""


@dataclass
class Reading:
    """What one execution produced: points to store, an error ('' for none), and the state the
    run carries to its next execution (ohlcv's open bucket; None: unchanged)."""

    points: list[MetricPoint] = field(default_factory=list)
    error: str = ""
    state: dict | None = None
