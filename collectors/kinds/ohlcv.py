"""ohlcv: a polled price aggregated into open, high, low, close and sample count per timeframe
bucket (aligned on the Unix epoch, UTC), labelled with symbol and timeframe. A bucket is final,
and its five points are written (dated at the bucket's start), once its time has passed."""

from __future__ import annotations

from collections.abc import Mapping

from collectors.choices import TIMEFRAME_SECONDS
from collectors.kinds import Reading
from collectors.kinds.json_paths import document, number_at
from observability.points import MetricPoint

SERIES = ("open", "high", "low", "close", "count")
US = 1_000_000


def bucket_start(time_us: int, timeframe: str) -> int:
    width = TIMEFRAME_SECONDS[timeframe] * US
    return time_us - time_us % width


def final_points(bucket: Mapping, labels: Mapping[str, str]) -> list[MetricPoint]:
    return [
        MetricPoint(f"ohlcv_{name}", dict(labels), float(bucket[name]), int(bucket["start"]))
        for name in SERIES
    ]


def aggregate(
    state: Mapping, price: float, time_us: int, timeframe: str
) -> tuple[dict, dict | None]:
    """(the open bucket after `price` at `time_us`, the bucket it closed or None). A price
    dated before the open bucket (a late execution) is ignored."""
    start = bucket_start(time_us, timeframe)
    current = dict(state) if state else None
    if current is not None and start < current["start"]:
        return current, None
    if current is None or start > current["start"]:
        fresh = {"start": start, "open": price, "high": price, "low": price, "close": price,
                 "count": 1}  # fmt: skip
        return fresh, current
    current.update(
        high=max(current["high"], price), low=min(current["low"], price), close=price,
        count=current["count"] + 1,
    )  # fmt: skip
    return current, None


def reading(
    body: bytes,
    *,
    price_path: str,
    timeframe: str,
    time_us: int,
    state: Mapping,
    labels: Mapping[str, str],
) -> Reading:
    price = number_at(document(body), price_path)
    state, closed = aggregate(state, price, time_us, timeframe)
    return Reading(points=final_points(closed, labels) if closed else [], state=state)


def flush(state: Mapping, *, now_us: int, timeframe: str, labels: Mapping[str, str]) -> Reading:
    """A failed poll still closes the open bucket when its time has passed."""
    if state and bucket_start(now_us, timeframe) > state["start"]:
        return Reading(points=final_points(state, labels), state={})
    return Reading()
