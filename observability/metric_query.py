"""The read behind `GET /api/metrics/query`: one metric's series (selected by name, labels and
application), bucketed by a step and reduced by an aggregation, from the cheapest source.

The source follows the step: below an hour, raw points; a whole number of hours, the hourly
rollup; of days, the daily one. Without a step, one is chosen for about 200 buckets over the
range, so ranges up to about three days read raw points and longer ones the rollups. On plain
PostgreSQL the rollups hold settled buckets only: the newer ones are computed from the raw
points in the same statement, as TimescaleDB's real-time aggregates do by themselves.

Cost is bounded before reading (series × buckets at most METRICS_QUERY_MAX_POINTS) and while
reading (METRICS_QUERY_TIMEOUT_MS as the statement timeout); both are a 400 saying what to
change.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction

from noc.api.dates import utc_instant
from noc.timeseries.rollups import date_bin, is_native
from observability.choices import MetricKind, QueryAggregation
from observability.models import Application, MetricSeries
from observability.timeseries import METRICS_DAILY, METRICS_HOURLY, POINTS_TABLE

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
TARGET_BUCKETS = 200
NICE_STEPS = [
    timedelta(seconds=s)
    for s in (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
] + [timedelta(days=d) for d in (2, 7, 14, 30)]
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"(\d+)(s|m|h|d|w)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass
class QueryError(Exception):
    message: str
    field: str | None = None
    status: int = 400

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class MetricQuery:
    name: str
    labels: dict[str, str]
    application: Application | None
    start: datetime
    end: datetime
    step: timedelta
    agg: str


# --- the parameters -----------------------------------------------------------------------


def parse_duration(text: str, field: str = "step") -> timedelta:
    """`30s`, `5m`, `1h`, `7d`, `2w`, or a number of seconds."""
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if match:
        seconds = int(match[1]) * _UNITS[match[2]]
    else:
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0 or seconds > 10 * 365 * 86400:
        raise QueryError(
            f"{text[:40]!r} is not a duration: write 30s, 5m, 1h, 7d, 2w or seconds.", field
        )
    return timedelta(seconds=seconds)


def parse_time(text: str, now: datetime, field: str) -> datetime:
    """ISO 8601 (naive means UTC), epoch seconds, `now`, or relative to now: `-1h`, `-7d`."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("-") and _DURATION.fullmatch(text[1:]):
        return now - parse_duration(text[1:], field)
    try:
        moment = (
            datetime.fromtimestamp(float(text), UTC)
            if re.fullmatch(r"\d+(\.\d+)?", text)
            else datetime.fromisoformat(text)
        )
        return utc_instant(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    except (ValueError, OverflowError, OSError) as exc:
        raise QueryError(
            f"{text[:40]!r} is not a time: write ISO 8601, epoch seconds, now, or -1h, -7d…"
            f" ({exc})",
            field,
        ) from None


def parse_labels(text: str) -> dict[str, str]:
    """A JSON object of strings, or `k=v,k2=v2`."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            labels = json.loads(text)
        except ValueError as exc:
            raise QueryError(f"The labels are not valid JSON: {exc}.", "labels") from None
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise QueryError("The labels must be a JSON object of strings.", "labels")
        return labels
    labels = {}
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise QueryError(
                f"{pair[:40]!r} is not a label matcher: write k=v,k2=v2 or a JSON object.",
                "labels",
            )
        labels[key.strip()] = value.strip()
    return labels


def choose_step(span: timedelta) -> timedelta:
    wanted = span / TARGET_BUCKETS
    return next((step for step in NICE_STEPS if step >= wanted), NICE_STEPS[-1])


def source_of(step: timedelta) -> str:
    """The coarsest source whose buckets the step is made of."""
    if step % DAY == timedelta(0):
        return METRICS_DAILY.name
    if step % HOUR == timedelta(0):
        return METRICS_HOURLY.name
    return "raw"


def build(params, *, now: datetime | None = None) -> MetricQuery:
    """A MetricQuery from the request's parameters (a QueryDict or dict), or a QueryError."""
    now = now or datetime.now(UTC)
    name = (params.get("name") or "").strip()
    if not name:
        raise QueryError("Name the metric to read (`name`).", "name")
    agg = params.get("agg") or QueryAggregation.AVG
    if agg not in QueryAggregation.values:
        raise QueryError(
            f"Unknown aggregation {agg[:20]!r}: use one of {', '.join(QueryAggregation.values)}.",
            "agg",
        )
    application = None
    if slug := params.get("application"):
        application = Application.objects.filter(slug=slug).first()
        if application is None:
            raise QueryError(f"Unknown application {slug[:64]!r}.", "application")
    end = parse_time(params.get("to") or "now", now, "to")
    start = parse_time(params.get("from") or "-1h", now, "from")
    if start >= end:
        raise QueryError("`from` must be before `to`.", "from")
    step = parse_duration(params["step"]) if params.get("step") else choose_step(end - start)
    start = ORIGIN + ((start - ORIGIN) // step) * step
    return MetricQuery(
        name, parse_labels(params.get("labels") or ""), application, start, end, step, agg
    )


# --- the read -----------------------------------------------------------------------------


def run(query: MetricQuery) -> dict:
    """The answer of /api/metrics/query (see the view for its shape)."""
    series = _series(query)
    if not series:
        raise QueryError(
            f"No series named {query.name!r}"
            + (f" with labels {query.labels}" if query.labels else "")
            + (f" in application {query.application.slug!r}" if query.application else "")
            + ".",
            "name",
            404,
        )
    buckets = math.ceil((query.end - query.start) / query.step)
    limit = settings.METRICS_QUERY_MAX_POINTS
    if len(series) * buckets > limit:
        raise QueryError(
            f"{len(series)} series × {buckets} steps is more than "
            f"{limit} points (METRICS_QUERY_MAX_POINTS): use a longer step, a shorter range or "
            "more labels.",
            "step",
        )
    source = source_of(query.step)
    rows = _read(query, source, series)
    by_series: dict[int, list] = {}
    for series_id, bucket, value in rows:
        if value is not None and math.isfinite(value):
            by_series.setdefault(series_id, []).append({"time": bucket, "value": value})
    return {
        "name": query.name,
        "agg": query.agg,
        "source": source,
        "exact": not (source != "raw" and query.agg == QueryAggregation.P95 and _merges(query)),
        "step": int(query.step.total_seconds()),
        "from": query.start,
        "to": query.end,
        "series": [
            {
                "application": slug,
                "labels": labels,
                "kind": kind,
                "unit": unit,
                "points": by_series.get(series_id, []),
            }
            for series_id, slug, labels, kind, unit in series
        ],
    }


def _merges(query: MetricQuery) -> bool:
    """Whether a step spans several rollup buckets (whose p95s can only be bounded)."""
    return query.step not in (HOUR, DAY)


def _series(query: MetricQuery) -> list[tuple]:
    found = MetricSeries.objects.filter(name=query.name)
    if query.labels:
        found = found.filter(labels__contains=query.labels)
    if query.application is not None:
        found = found.filter(application=query.application)
    limit = settings.METRICS_QUERY_MAX_POINTS
    rows = list(
        found.order_by("id").values_list("id", "application__slug", "labels", "kind", "unit")[
            : limit + 1
        ]
    )
    if len(rows) > limit:
        raise QueryError(
            f"More than {limit} series match (METRICS_QUERY_MAX_POINTS): add labels.", "labels"
        )
    return rows


RAW_AGGREGATES = {
    QueryAggregation.AVG: "avg(value)",
    QueryAggregation.MIN: "min(value)",
    QueryAggregation.MAX: "max(value)",
    QueryAggregation.SUM: "sum(value)",
    QueryAggregation.COUNT: "count(*)::float8",
    QueryAggregation.LAST: "(array_agg(value ORDER BY time DESC))[1]",
    QueryAggregation.P95: "percentile_cont(0.95) WITHIN GROUP (ORDER BY value)",
    # A counter's increase: each point's rise over the one before it (a drop is a restart, so
    # the value itself is the rise); delta series hold increments already.
    QueryAggregation.RATE: "sum(CASE WHEN is_delta THEN value WHEN prev IS NULL THEN 0 "
    "WHEN value >= prev THEN value - prev ELSE value END) / %(step_s)s",
}
ROLLUP_AGGREGATES = {
    QueryAggregation.AVG: "sum(sum) / nullif(sum(count), 0)",
    QueryAggregation.MIN: "min(min)",
    QueryAggregation.MAX: "max(max)",
    QueryAggregation.SUM: "sum(sum)",
    QueryAggregation.COUNT: "sum(count)::float8",
    QueryAggregation.LAST: "(array_agg(last ORDER BY bucket DESC))[1]",
    # Exact when the step is one rollup bucket; over several, the largest (an upper bound).
    QueryAggregation.P95: "max(p95)",
    # A bucket's own increase (resets inside it included; rows from before the column existed
    # fall back to last − first), plus the step from the previous bucket's last value.
    QueryAggregation.RATE: "sum(CASE WHEN is_delta THEN sum "
    "ELSE coalesce(increase, CASE WHEN last >= first THEN last - first ELSE last END) + "
    "(CASE WHEN prev IS NULL THEN 0 WHEN first >= prev THEN first - prev ELSE first END) END) "
    "/ %(step_s)s",
}
COLUMNS = "bucket, series_id, count, sum, min, max, first, last, p95, increase"


def _read(query: MetricQuery, source: str, series: list[tuple]) -> list[tuple]:
    params = {
        "ids": [row[0] for row in series],
        "deltas": [row[0] for row in series if row[3] == MetricKind.DELTA],
        "start": query.start,
        "end": query.end,
        "step": query.step,
        "step_s": query.step.total_seconds(),
        "origin": ORIGIN,
    }
    sql = _raw_sql(query.agg) if source == "raw" else _rollup_sql(query.agg, source, params)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {settings.METRICS_QUERY_TIMEOUT_MS:d}")
            cursor.execute(sql, params)
            return cursor.fetchall()
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "57014":  # query_canceled
            raise
        raise QueryError(
            f"The query took longer than {settings.METRICS_QUERY_TIMEOUT_MS} ms "
            "(METRICS_QUERY_TIMEOUT_MS): use a longer step, a shorter range or more labels.",
            "step",
        ) from None


def _raw_sql(agg: str) -> str:
    lag = (
        ", lag(value) OVER (PARTITION BY series_id ORDER BY time) AS prev"
        if agg == QueryAggregation.RATE
        else ""
    )
    return f"""
        SELECT series_id, date_bin(%(step)s, time, %(origin)s) AS t, {RAW_AGGREGATES[agg]}
        FROM (
            SELECT series_id, time, value, series_id = ANY(%(deltas)s) AS is_delta{lag}
            FROM {POINTS_TABLE}
            WHERE series_id = ANY(%(ids)s) AND time >= %(start)s AND time < %(end)s
        ) p
        GROUP BY 1, 2 ORDER BY 1, 2
    """


def _rollup_sql(agg: str, source: str, params: dict) -> str:
    rollup = METRICS_DAILY if source == METRICS_DAILY.name else METRICS_HOURLY
    rows = (
        f"SELECT {COLUMNS} FROM {rollup.name} WHERE series_id = ANY(%(ids)s) "
        "AND bucket >= %(start)s AND bucket < %(end)s"
    )
    if is_native(rollup):
        # Settled buckets from the table, the rest computed from the raw points.
        params["settled"] = _settled_upto(rollup.name, params["start"])
        fresh = rollup.query(
            date_bin(rollup),
            "WHERE series_id = ANY(%(ids)s) AND time >= greatest(%(start)s, %(settled)s) "
            "AND time < %(end)s",
        )
        rows = f"{rows} AND bucket < %(settled)s UNION ALL {fresh}"
    lag = (
        ", lag(last) OVER (PARTITION BY series_id ORDER BY bucket) AS prev"
        if agg == QueryAggregation.RATE
        else ""
    )
    return f"""
        SELECT series_id, date_bin(%(step)s, bucket, %(origin)s) AS t, {ROLLUP_AGGREGATES[agg]}
        FROM (
            SELECT r.*, series_id = ANY(%(deltas)s) AS is_delta{lag} FROM ({rows}) r
        ) p
        GROUP BY 1, 2 ORDER BY 1, 2
    """


def _settled_upto(name: str, start: datetime) -> datetime:
    """Where the rollup table stops being current: its watermark, or the oldest late write
    not yet recomputed (buckets from there are read from the raw points)."""
    from noc.models import RollupWatermark

    mark = RollupWatermark.objects.filter(name=name).values_list("upto", "dirty_since").first()
    if mark is None:
        return start
    upto, dirty_since = mark
    if dirty_since is not None:
        dirty_bucket = ORIGIN + ((dirty_since - ORIGIN) // HOUR) * HOUR
        if name == METRICS_DAILY.name:
            dirty_bucket = ORIGIN + ((dirty_since - ORIGIN) // DAY) * DAY
        return min(upto, dirty_bucket)
    return upto
