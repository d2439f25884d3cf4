"""Event-based SLIs from metric series, for every metric SLO at once: a ratio of two counters
(good events / total events), or a latency histogram under a threshold (good = the cumulative
`<name>_bucket{le=…}` of the largest bound at or under the threshold, total = `<name>_count`).

A selector names one application's series: `{"application": slug, "name": metric, "labels":
{…}}`; every series of that name whose labels include those is summed (each label set of a
histogram gets its own bucket).

Events in a range are the increase of cumulative series (kind counter or histogram): each point
counts the step from the point before it (the one before the range included), a point below its
predecessor a reset, counted from zero; a series' very first point counts nothing. Delta series
(OTLP delta temporality) count their values. The last SHORT (6 h, plus the unsettled part of
the hourly rollup) is read from the raw points, so burn-rate lookbacks up to 6 h are exact to
the point; before that whole UTC days from `metrics_daily` and the hours around them from
`metrics_hourly`, whose `increase` is each bucket's own increase (resets included) and whose
`first`/`last` give the steps between buckets. Ranges longer than 6 h (1 d and 3 d lookbacks,
windows over 6 h) therefore start at the hour containing their start, as check SLIs' do
(sli.py), calendar windows included.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from django.db import connection

from noc.models import RollupWatermark
from noc.timeseries.rollups import is_native
from observability.choices import MetricKind
from observability.points import LABEL_NAME, NAME
from observability.timeseries import DAILY, HOURLY, METRICS_HOURLY
from slos.budget import LOOKBACKS
from slos.choices import BudgetingMethod, SliType
from slos.sli import WORK_MEM

SHORT = timedelta(hours=6)
HOUR = timedelta(hours=1)
MANY = 200  # series from which the read raises work_mem (as sli.py does)
COUNTER_KINDS = (MetricKind.COUNTER, MetricKind.DELTA)
HISTOGRAM_KINDS = (MetricKind.HISTOGRAM, MetricKind.DELTA)
SELECTOR_KEYS = {"application", "name", "labels"}


# --- selectors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    application: str
    name: str
    labels: tuple[tuple[str, str], ...] = ()


def parse_selector(value) -> tuple[Selector | None, str]:
    """(selector, "") or (None, what is wrong with it)."""
    if not isinstance(value, dict):
        return None, 'An object {"application": slug, "name": metric, "labels": {…}}.'
    unknown = sorted(set(value) - SELECTOR_KEYS)
    if unknown:
        return None, f"Unknown key {unknown[0]!r}; use application, name and labels."
    application, name = value.get("application"), value.get("name")
    if not isinstance(application, str) or not application:
        return None, "`application`: the slug of the application whose series these are."
    if not isinstance(name, str) or len(name) > 200 or not NAME.fullmatch(name):
        return None, "`name`: a metric name (Prometheus syntax, e.g. http_requests_total)."
    labels = value.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and LABEL_NAME.fullmatch(k) and isinstance(v, str) and "\x00" not in v
        for k, v in labels.items()
    ):
        return None, "`labels`: an object of label names to text values."
    return Selector(application, name, tuple(sorted(labels.items()))), ""


@dataclass(frozen=True)
class Series:
    id: int
    labels: dict[str, str]
    kind: str


Lookup = tuple[Selector, str]  # a selector, and the metric name to match it under

NAMED = """
    SELECT a.slug, s.name, s.id, s.labels, s.kind
    FROM unnest(%s::varchar[], %s::varchar[]) AS q(application, name)
    JOIN observability_application a ON a.slug = q.application
    JOIN observability_metricseries s ON s.application_id = a.id AND s.name = q.name
    ORDER BY s.id
"""


def matching_series_of(lookups: list[Lookup]) -> dict[Lookup, list[Series]]:
    """The series each lookup matches: one statement reads every series of the names looked
    up (by application and name, indexed), then each selector's labels pick among them by an
    index of label values, not by testing every series of its name (1,000 SLOs on one metric
    name would be a million label comparisons)."""
    lookups = list(dict.fromkeys(lookups))
    found: dict[Lookup, list[Series]] = {lookup: [] for lookup in lookups}
    names = sorted({(selector.application, name) for selector, name in lookups})
    if not names:
        return found
    named: dict[tuple[str, str], list[Series]] = defaultdict(list)
    by_id: dict[int, Series] = {}
    by_label: dict[tuple[str, str, str, str], set[int]] = defaultdict(set)
    with connection.cursor() as cursor:
        cursor.execute(NAMED, [[a for a, _n in names], [n for _a, n in names]])
        for slug, name, series_id, labels, kind in cursor.fetchall():
            series = by_id[series_id] = Series(series_id, _labels(labels), kind)
            named[(slug, name)].append(series)
            for key, value in series.labels.items():
                by_label[(slug, name, key, value)].add(series_id)
    for lookup in lookups:
        selector, name = lookup
        if not selector.labels:
            found[lookup] = named[(selector.application, name)]
            continue
        sets = [by_label[(selector.application, name, k, v)] for k, v in selector.labels]
        found[lookup] = [by_id[i] for i in sorted(set.intersection(*sorted(sets, key=len)))]
    return found


def matching_series(selector: Selector, name: str | None = None) -> list[Series]:
    """The series the selector matches (under another metric name when given)."""
    lookup = (selector, name or selector.name)
    return matching_series_of([lookup])[lookup]


def _labels(value) -> dict[str, str]:
    # Django's psycopg set-up leaves jsonb as text on raw cursors.
    return json.loads(value) if isinstance(value, str) else value


def _bound(le: str | None) -> float | None:
    try:
        bound = float(le) if le is not None else None
    except ValueError:
        return None
    return None if bound is None or math.isnan(bound) else bound


def good_buckets(buckets: list[Series], threshold: float) -> list[Series]:
    """Per label set (without `le`), the bucket of the largest bound at or under the threshold."""
    best: dict[str, tuple[float, Series]] = {}
    for series in buckets:
        bound = _bound(series.labels.get("le"))
        if bound is None or bound > threshold:
            continue
        group = json.dumps({k: v for k, v in series.labels.items() if k != "le"}, sort_keys=True)
        if group not in best or bound > best[group][0]:
            best[group] = (bound, series)
    return [series for _bound_, series in best.values()]


# --- validation (SLO.clean) ----------------------------------------------------------------------


METRIC_FIELDS = ("sli_type", "good_metric", "total_metric", "histogram_metric",
                 "histogram_threshold")  # fmt: skip


def _selectors_changed(slo) -> bool:
    """New, or its metric fields edited: an SLO whose series went away (its application
    deleted) can still be renamed or disabled."""
    if slo._state.adding:
        return True
    stored = type(slo).objects.filter(pk=slo.pk).values_list(*METRIC_FIELDS).first()
    return stored != tuple(getattr(slo, name) for name in METRIC_FIELDS)


def validate_metric_sli(slo, add) -> None:
    """The fields of a metric SLI, each error naming its field; new or edited selectors must
    match series of a kind that counts events."""
    lookup = _selectors_changed(slo)
    if slo.latency_threshold_ms is not None:
        add("latency_threshold_ms", "Only for check latency SLIs; a histogram takes "
            "histogram_threshold.")  # fmt: skip
    if slo.budgeting_method != BudgetingMethod.OCCURRENCES:
        add("budgeting_method", "Metric SLIs count events: occurrences only.")
    if slo.sli_type == SliType.RATIO:
        for field in ("histogram_metric", "histogram_threshold"):
            if getattr(slo, field) is not None:
                add(field, "Only for histogram SLIs; a ratio takes good_metric and total_metric.")
        for field in ("good_metric", "total_metric"):
            _counter_field(slo, field, add, lookup=lookup)
        return
    for field in ("good_metric", "total_metric"):
        if getattr(slo, field) is not None:
            add(field, "Only for ratio SLIs; a histogram takes histogram_metric.")
    threshold = slo.histogram_threshold
    if threshold is None or not math.isfinite(threshold):
        add("histogram_threshold", "A histogram SLI needs a threshold: the bucket bound (`le`) "
            "at or under which an event is good, in the histogram's unit.")  # fmt: skip
        threshold = None
    _histogram_field(slo, threshold, add, lookup=lookup)


def _selector_of(slo, field: str, add) -> Selector | None:
    value = getattr(slo, field)
    if value is None:
        add(field, "Required for this SLI type.")
        return None
    selector, problem = parse_selector(value)
    if selector is None:
        add(field, problem)
    return selector


def _counter_field(slo, field: str, add, *, lookup: bool) -> None:
    selector = _selector_of(slo, field, add)
    if selector is None or not lookup:
        return
    found = matching_series(selector)
    if not found:
        add(field, f"No series {_describe(selector)}.")
        return
    wrong = [s for s in found if s.kind not in COUNTER_KINDS]
    if wrong:
        add(field, f"{selector.name} is a {wrong[0].kind} series; a ratio counts events of "
            "counters (kind counter or delta).")  # fmt: skip


def _histogram_field(slo, threshold: float | None, add, *, lookup: bool) -> None:
    field = "histogram_metric"
    selector = _selector_of(slo, field, add)
    if selector is None or not lookup:
        return
    buckets = matching_series(selector, f"{selector.name}_bucket")
    counts = matching_series(selector, f"{selector.name}_count")
    if not buckets or not counts:
        add(field, f"No histogram {_describe(selector)}: its {selector.name}_bucket and "
            f"{selector.name}_count series are needed.")  # fmt: skip
        return
    wrong = [s for s in buckets + counts if s.kind not in HISTOGRAM_KINDS]
    if wrong:
        add(field, f"{selector.name} is a {wrong[0].kind} series, not a histogram.")
        return
    if threshold is not None and not good_buckets(buckets, threshold):
        bounds = sorted({b for s in buckets if (b := _bound(s.labels.get("le"))) is not None})
        add("histogram_threshold", f"No bucket of {selector.name} is at or under {threshold:g} "
            f"(its bounds: {', '.join(f'{b:g}' for b in bounds[:20])}).")  # fmt: skip


def _describe(selector: Selector) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in selector.labels)
    return f"{selector.name}{{{labels}}} in application {selector.application!r}"


# --- reading -------------------------------------------------------------------------------------


@dataclass
class Events:
    """Good and total events over one range, and the minutes covered by the total series."""

    good_events: float = 0
    total: float = 0
    minutes: float = 0

    def good(self, sli_type: str = "", threshold_ms: int | None = None) -> float:
        # Inconsistent counters (more good than total) are read as all good, never above.
        return min(max(self.good_events, 0), self.total)


@dataclass
class Readings:
    window: Events
    lookbacks: dict[timedelta, Events]


@dataclass(frozen=True)
class Target:
    slo_id: str
    sli_type: str
    window_start: datetime
    good: Selector | None
    total: Selector | None
    histogram: Selector | None
    threshold: float | None


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _lookups(target: Target) -> tuple[list[Lookup], list[Lookup]]:
    """What a target's good and total events are read from."""
    if target.sli_type == SliType.RATIO:
        good = [(target.good, target.good.name)] if target.good else []
        return good, [(target.total, target.total.name)] if target.total else []
    if target.histogram is None or target.threshold is None:
        return [], []
    name = target.histogram.name
    return [(target.histogram, f"{name}_bucket")], [(target.histogram, f"{name}_count")]


def _series_of(targets: list[Target]) -> dict[str, tuple[list[Series], list[Series]]]:
    """(good series, total series) of every target, as its selectors match them now."""
    lookups = {t.slo_id: _lookups(t) for t in targets}
    found = matching_series_of(
        [lookup for good, total in lookups.values() for lookup in good + total]
    )
    series = {}
    for t in targets:
        good, total = ([s for lookup in part for s in found[lookup]] for part in lookups[t.slo_id])
        if t.sli_type == SliType.HISTOGRAM and t.threshold is not None:
            good = good_buckets(good, t.threshold)
        series[t.slo_id] = (good, total)
    return series


def _settled() -> dict[str, datetime]:
    """Native: where each metric rollup's whole, up-to-date buckets end (a late write's dirty
    mark included); a rollup never refreshed is missing."""
    marks = RollupWatermark.objects.filter(name__in=[HOURLY, DAILY])
    return {m.name: m.upto if m.dirty_since is None else min(m.upto, m.dirty_since) for m in marks}


def _sources(now: datetime) -> tuple[datetime, datetime]:
    """(where the raw points take over from the rollups, where metrics_daily's settled days
    end). The raw part covers 6 h at least (from an hour), and everything the native hourly
    refresh has not settled. TimescaleDB's real-time aggregates are complete by themselves."""
    boundary = _floor_hour(now - SHORT)
    if not is_native(METRICS_HOURLY):
        return boundary, boundary
    settled = _settled()
    hourly, daily = settled.get(HOURLY), settled.get(DAILY)
    raw_from = min(boundary, _floor_hour(hourly)) if hourly else now - timedelta(days=400)
    return raw_from, daily or raw_from - timedelta(days=400)


def _floor_day(moment: datetime) -> datetime:
    return _floor_hour(moment).replace(hour=0)


def _pieces(
    edges: list[datetime], daily_until: datetime
) -> tuple[list[tuple[datetime, datetime]], list[tuple[datetime, datetime]]]:
    """Hourly and daily stretches covering [edges[0], edges[-1]) (hours, all of them), each
    within two consecutive edges (so a bucket falls in one band): the whole UTC days of a
    stretch from metrics_daily while it is settled, the hours around them from
    metrics_hourly. A 90-day window reads ~90 daily rows and ≤ 48 hourly ones a series."""
    hourly, daily = [], []
    for low, high in pairwise(edges):
        first_day = _floor_day(low) + (timedelta(days=1) if _floor_day(low) < low else timedelta())
        last_day = min(_floor_day(high), _floor_day(daily_until))
        if first_day >= last_day:
            hourly.append((low, high))
            continue
        daily.append((first_day, last_day))
        hourly += [(a, b) for a, b in ((low, first_day), (last_day, high)) if a < b]
    return hourly, daily


STEP = "CASE WHEN prev IS NULL THEN 0 WHEN first >= prev THEN first - prev ELSE first END"
EVENTS = """
WITH s AS (SELECT * FROM unnest(%(ids)s::int[], %(delta)s::bool[]) AS s(series_id, delta)),
seg AS (
    {rollups}
    SELECT p.series_id, s.delta, p.time AS t, p.time AS t_end, p.value AS first,
           p.value AS last, 0 AS inc, p.value AS sum
    FROM observability_metricpoint p JOIN s ON s.series_id = p.series_id
    WHERE p.time >= %(raw_from)s AND p.time < %(now)s
    UNION ALL
    -- the point before everything read: the first segment's step starts from it
    SELECT s.series_id, false, '-infinity', '-infinity', b.value, b.value, 0, 0 FROM s
    CROSS JOIN LATERAL (
        SELECT p.value FROM observability_metricpoint p
        WHERE p.series_id = s.series_id AND p.time < %(since)s ORDER BY p.time DESC LIMIT 1
    ) b WHERE NOT s.delta
)
SELECT series_id, width_bucket(t, %(bounds)s::timestamptz[]) AS band,
       sum(CASE WHEN delta THEN sum ELSE inc + {step} END), min(t), max(t_end)
FROM (SELECT *, lag(last) OVER (PARTITION BY series_id ORDER BY t) AS prev FROM seg) seg
WHERE t >= %(since)s GROUP BY 1, 2
"""
ROLLUP_SEGMENTS = """
    SELECT r.series_id, s.delta, r.bucket AS t, r.bucket + interval '{size}' AS t_end, r.first,
           r.last, coalesce(r.increase, CASE WHEN r.last >= r.first THEN r.last - r.first
                                             ELSE r.last END) AS inc, r.sum
    FROM {table} r JOIN s ON s.series_id = r.series_id WHERE {ranges}
    UNION ALL
"""


def _rollup_segments(table: str, size: str, prefix: str, pieces: list) -> tuple[str, dict]:
    if not pieces:
        return "", {}
    ranges = " OR ".join(
        f"(r.bucket >= %({prefix}{i}_from)s AND r.bucket < %({prefix}{i}_to)s)"
        for i in range(len(pieces))
    )
    params = {}
    for i, (low, high) in enumerate(pieces):
        params |= {f"{prefix}{i}_from": low, f"{prefix}{i}_to": high}
    return ROLLUP_SEGMENTS.format(table=table, size=size, ranges=ranges), params


def _events_query(bounds: list[datetime], raw_from: datetime, daily_until: datetime):
    """The statement and its parameters (but the series) for these band bounds."""
    edges = [b for b in bounds if b < raw_from] + [raw_from]
    hourly, daily = _pieces(edges, daily_until)
    hourly_sql, hourly_params = _rollup_segments(HOURLY, "1 hour", "h", hourly)
    daily_sql, daily_params = _rollup_segments(DAILY, "1 day", "d", daily)
    sql = EVENTS.format(rollups=hourly_sql + daily_sql, step=STEP)
    return sql, {"bounds": bounds} | hourly_params | daily_params


@dataclass
class _Band:
    events: float
    first: datetime
    last: datetime


def read(targets: list[Target], now: datetime) -> dict[str, Readings]:
    """Window and lookback events of every target: one statement finds the series of every
    selector, one more reads the events of them all."""
    if not targets:
        return {}
    series = _series_of(targets)
    raw_from, daily_until = _sources(now)
    starts = {t.slo_id: _range_start(t.window_start, now) for t in targets}
    lookbacks = {lb: _range_start(now - lb, now) for lb in LOOKBACKS}
    bounds = sorted({*starts.values(), *lookbacks.values()})
    band_of = {moment: i for i, moment in enumerate(bounds, 1)}
    kinds = {s.id: s.kind for good, total in series.values() for s in good + total}
    ids = sorted(kinds)
    bands: dict[int, dict[int, _Band]] = defaultdict(dict)
    if ids:
        raw_from = max(min(raw_from, now), bounds[0])
        sql, params = _events_query(bounds, raw_from, daily_until)
        params |= {
            "ids": ids, "delta": [kinds[i] == MetricKind.DELTA for i in ids],
            "since": bounds[0], "raw_from": raw_from, "now": now,
        }  # fmt: skip
        with connection.cursor() as cursor:
            if len(ids) >= MANY and connection.in_atomic_block:
                # The segments of many series sort to disk with the default 4 MB; for the
                # evaluation's transaction only.
                cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            cursor.execute(sql, params)
            for series_id, band, events, first, last in cursor.fetchall():
                bands[series_id][band] = _Band(events or 0, first, last)
    readings = {}
    for t in targets:
        good, total = series[t.slo_id]

        def events(start: datetime, good=good, total=total) -> Events:
            return _events(bands, good, total, band_of[start], start, now)

        readings[t.slo_id] = Readings(
            window=events(starts[t.slo_id]),
            lookbacks={lb: events(start) for lb, start in lookbacks.items()},
        )
    return readings


def _range_start(start: datetime, now: datetime) -> datetime:
    """Ranges over SHORT start at the hour containing their start (read from metrics_hourly)."""
    return _floor_hour(start) if now - start > SHORT else start


def _events(
    bands: dict[int, dict[int, _Band]], good: list[Series], total: list[Series], band: int,
    start: datetime, now: datetime,
) -> Events:  # fmt: skip
    def summed(found: list[Series]) -> float:
        return sum(b.events for s in found for n, b in bands[s.id].items() if n >= band)

    covered = [b for s in total for n, b in bands[s.id].items() if n >= band]
    minutes = 0.0
    if covered:
        first = max(min(b.first for b in covered), start)
        last = min(max(b.last for b in covered), now)
        minutes = max((last - first).total_seconds() / 60, 0)
    return Events(good_events=summed(good), total=summed(total), minutes=minutes)
