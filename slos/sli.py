"""Reading SLIs for every enabled SLO at once from the check rollups, in two set-based queries
(three when a calendar window starts inside an hour), each one pass over the rows it needs.

Short ranges (≤ 6 h, the burn-rate lookbacks up to the 6 h rule) are summed exactly from the
per-minute rollup. Longer ranges (1 d and 3 d lookbacks, and SLO windows over 6 h) are summed
from the hourly rollup from the hour containing their start, plus the minutes of the current
hour: a long rolling window is therefore aligned down to the hour (at most 59 minutes longer
than nominal, under 0.14 % of a 30-day window). A calendar window starts exactly: in a zone
whose offset is not whole hours (Asia/Kolkata, +05:30) its period begins inside a UTC hour, so
its whole hours come from the hourly rollup and the minutes before the first one from the
per-minute rollup (one more query for all such SLOs), as the SLA report reads them; otherwise
the end of the previous period would count in this one. Timeslice SLOs with windows over 6 h
read availability timeslices from the hourly rollup's good-minute counts.

SLIs, from check results (maintenance checks are excluded by the rollup itself):
- availability: good = up + degraded, total = up + degraded + down;
- error rate: bad = down (reported as the error percentage), total as above;
- latency: good = checks at or under the threshold, estimated inside a histogram bucket by
  linear interpolation (exact at 50, 100, 250, 500, 1000, 2500, 5000, 10000 ms).
Minutes without any check are counted and reported, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection

from services.choices import LATENCY_BUCKETS_MS
from slos.budget import LOOKBACKS

SHORT = timedelta(hours=6)
WORK_MEM = "64MB"  # for the evaluation's transaction only
MANY = 1000  # targets from which the read raises work_mem
HOUR = timedelta(hours=1)
LE = tuple(f"le_{ms}" for ms in LATENCY_BUCKETS_MS)
COUNTS = ("n_up", "n_degraded", "n_down", *LE)


@dataclass
class Sums:
    n_up: float = 0
    n_degraded: float = 0
    n_down: float = 0
    le: dict[int, float] = field(default_factory=dict)
    minutes: float = 0  # minutes with at least one check
    good_minutes: float = 0  # minutes with no failed check

    def add(self, other: Sums) -> Sums:
        return Sums(
            self.n_up + other.n_up,
            self.n_degraded + other.n_degraded,
            self.n_down + other.n_down,
            {ms: self.le.get(ms, 0) + other.le.get(ms, 0) for ms in LATENCY_BUCKETS_MS},
            self.minutes + other.minutes,
            self.good_minutes + other.good_minutes,
        )

    @property
    def total(self) -> float:
        return self.n_up + self.n_degraded + self.n_down

    def good(self, sli_type: str, threshold_ms: int | None) -> float:
        if sli_type == "latency":
            return latency_good(self.le, threshold_ms or 0)
        return self.n_up + self.n_degraded


def latency_good(le: dict[int, float], threshold: float) -> float:
    lower_bound, lower_count = 0, 0.0
    for bound in LATENCY_BUCKETS_MS:
        count = le.get(bound, 0.0)
        if threshold <= bound:
            share = (threshold - lower_bound) / (bound - lower_bound)
            return lower_count + (count - lower_count) * share
        lower_bound, lower_count = bound, count
    return lower_count


@dataclass(frozen=True)
class Target:
    """What to read for one SLO. `exact_start` (calendar windows): the window begins at
    `window_start` to the minute, not at the start of its hour."""

    slo_id: str
    service_id: str
    window_start: datetime
    exact_start: bool = False
    latency: bool = False  # a latency SLO: its service's latency histogram is read too


def _band_sums(columns: dict[str, str]) -> str:
    """The sums one band of rollup rows contributes (per service). As integers, so that their
    sums are bigint (Python ints), not numeric: a band is at most 90 days of one service."""
    return ", ".join(f"sum({expr})::integer AS {name}" for name, expr in columns.items())


def _range_columns(prefix: str, band: str, columns: Iterable[str]) -> list[str]:
    """One range's sums for a target: the bands from `band` up (the ranges all end now)."""
    return [
        f"coalesce(sum(b.{c}) FILTER (WHERE b.band >= {band}), 0) AS {prefix}_{c}" for c in columns
    ]


def _sums_from(row: dict, prefix: str) -> Sums:
    return Sums(
        n_up=row[f"{prefix}_n_up"],
        n_degraded=row[f"{prefix}_n_degraded"],
        n_down=row[f"{prefix}_n_down"],
        le={ms: row.get(f"{prefix}_le_{ms}", 0) for ms in LATENCY_BUCKETS_MS},
        minutes=row[f"{prefix}_minutes"],
        good_minutes=row[f"{prefix}_good"],
    )


def _targets_cte() -> str:
    return (
        "WITH t AS (SELECT * FROM unnest(%(slos)s::varchar[], %(services)s::varchar[], "
        "%(minute_bands)s::int[], %(hour_bands)s::int[], %(latency)s::bool[]) "
        "AS t(slo_id, service_id, minute_band, hour_band, latency))"
    )


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


# Every range an SLO needs ends now and starts at one of a few moments (the lookbacks, the
# current hour, the windows' starts, which SLOs of one kind share). So each query first sums
# the rollup rows per service and *band*, the rows between two consecutive such moments (a
# row's band is the number of those moments at or before it): one pass with a few plain sums
# a row, where filtering every row into every range cost ~40 (hourly) and ~90 (per minute)
# FILTER aggregates a row. A range is then the bands from its start on, summed per target over
# a few rows per service. The latency histogram (8 columns) is summed in a second pass over
# the services of latency SLOs only, through the primary key: the other services (most) cost
# five sums a row.


def _banded_query(
    rollup: str, columns: dict[str, str], ranges: dict[str, str], bounds: int, *, latency: bool
) -> str:
    band = " + ".join(f"(r.bucket >= %(bound{i})s)::int" for i in range(bounds))
    services = "latency_services" if latency else "all_services"
    selected = [
        col for prefix, start in ranges.items() for col in _range_columns(prefix, start, columns)
    ]
    return (
        f"{_targets_cte()}, b AS MATERIALIZED ("
        f"SELECT r.service_id, {band} AS band, {_band_sums(columns)} FROM {rollup} r "
        "WHERE r.bucket >= %(bound0)s AND r.bucket < %(upto)s "
        f"AND r.service_id = ANY(%({services})s::varchar[]) GROUP BY 1, 2) "
        f"SELECT t.slo_id, {', '.join(selected)} FROM t "
        f"JOIN b ON b.service_id = t.service_id {'WHERE t.latency ' if latency else ''}"
        "GROUP BY t.slo_id"
    )


WITH_DATA = "(r.n_up + r.n_degraded + r.n_down > 0)::int"
GOOD_MINUTE = "(r.n_up + r.n_degraded + r.n_down > 0 AND r.n_down = 0)::int"
HISTOGRAM = {c: f"r.{c}" for c in LE}


def _counts(*, minutes: str, good_minutes: str) -> dict[str, str]:
    return {
        "n_up": "r.n_up", "n_degraded": "r.n_degraded", "n_down": "r.n_down",
        "minutes": minutes, "good": good_minutes,
    }  # fmt: skip


def _minute_queries(bands: dict[str, int], bounds: int) -> tuple[str, str]:
    # Every minute range read here starts within the last 6 h (longer windows come from the
    # hourly rollup), so the lower bound prunes partitions and uses the bucket index.
    ranges = {prefix: str(band) for prefix, band in bands.items()}
    ranges["win"] = "t.minute_band"
    counts = _counts(minutes=WITH_DATA, good_minutes=GOOD_MINUTE)
    rollup = "services_checkrollup"
    return (
        _banded_query(rollup, counts, ranges, bounds, latency=False),
        _banded_query(rollup, HISTOGRAM, ranges, bounds, latency=True),
    )


def _hour_queries(bands: dict[str, int], bounds: int) -> tuple[str, str]:
    ranges = {prefix: str(band) for prefix, band in bands.items()}
    # The hour the window starts in (rolling), or the first whole hour in it (exact start).
    ranges["win"] = "t.hour_band"
    counts = _counts(minutes="r.m_total", good_minutes="r.m_good_avail")
    rollup = "services_checkrollup_hourly"
    return (
        _banded_query(rollup, counts, ranges, bounds, latency=False),
        _banded_query(rollup, HISTOGRAM, ranges, bounds, latency=True),
    )


def _sum_columns(prefix: str, condition: str, *, minutes: str, good_minutes: str) -> list[str]:
    columns = [f"coalesce(sum({c}) FILTER (WHERE {condition}), 0) AS {prefix}_{c}" for c in COUNTS]
    columns.append(f"coalesce(sum({minutes}) FILTER (WHERE {condition}), 0) AS {prefix}_minutes")
    columns.append(f"coalesce(sum({good_minutes}) FILTER (WHERE {condition}), 0) AS {prefix}_good")
    return columns


def _head_query() -> str:
    """The minutes of exact-start windows before their first whole hour, from the per-minute
    rollup: one segment per SLO, at most 59 minutes each."""
    with_data = "(r.n_up + r.n_degraded + r.n_down > 0)::int"
    good_minute = "(r.n_up + r.n_degraded + r.n_down > 0 AND r.n_down = 0)::int"
    columns = _sum_columns("head", "true", minutes=with_data, good_minutes=good_minute)
    return (
        "WITH h AS (SELECT * FROM unnest(%(head_slos)s::varchar[], %(head_services)s::varchar[], "
        "%(head_from)s::timestamptz[], %(head_to)s::timestamptz[]) "
        "AS h(slo_id, service_id, t_from, t_to)) "
        f"SELECT h.slo_id, {', '.join(columns)} FROM h "
        "JOIN services_checkrollup r ON r.service_id = h.service_id "
        "AND r.bucket >= h.t_from AND r.bucket < h.t_to GROUP BY h.slo_id"
    )


def _fetch(sql: str, params: dict) -> dict[str, dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [c.name for c in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


@dataclass
class Readings:
    window: Sums
    lookbacks: dict[timedelta, Sums]


def _hour_start(target: Target) -> datetime:
    """Where the window's hourly sum begins: the hour containing its start, or, for an exact
    start, the first whole hour at or after it."""
    floor = target.window_start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if target.exact_start and floor < target.window_start:
        return floor + HOUR
    return floor


def _head(target: Target, now: datetime) -> tuple[datetime, datetime] | None:
    """[start, first whole hour) of an exact-start window summed hourly, when not empty."""
    hour_start = _hour_start(target)
    if now - target.window_start > SHORT and target.window_start < hour_start:
        return target.window_start, hour_start
    return None


@dataclass(frozen=True)
class Query:
    sql: str
    params: dict


@dataclass(frozen=True)
class Plan:
    """What one evaluation reads: per rollup, the counts of every target's service and the
    latency histogram of the latency SLOs' services, each with its band bounds."""

    minute: Query
    minute_latency: Query
    hour: Query
    hour_latency: Query


def _bands(starts: set[datetime]) -> tuple[list[datetime], dict[datetime, int]]:
    """Sorted distinct range starts, and the band number of the rows from each on."""
    bounds = sorted(starts)
    return bounds, {moment: i for i, moment in enumerate(bounds, 1)}


def plan(targets: list[Target], now: datetime) -> Plan:
    """The queries for these targets (bench/slos.py EXPLAINs them too)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    short = {f"lb{_seconds(lb)}": now - lb for lb in LOOKBACKS if lb <= SHORT}
    short["tail"] = hour
    # A window of at most 6 h so far is summed from minutes: its start is a band bound too.
    window_starts = {t.window_start for t in targets if now - t.window_start <= SHORT}
    minute_bounds, minute_band = _bands({now - SHORT, *short.values(), *window_starts})
    long = {
        f"lb{_seconds(lb)}": (now - lb).replace(minute=0, second=0, microsecond=0)
        for lb in LOOKBACKS
        if lb > SHORT
    }
    hour_starts = [_hour_start(t) for t in targets]
    hour_bounds, hour_band = _bands({*long.values(), *hour_starts})
    beyond = len(minute_bounds) + 1  # no row: the window is summed hourly
    common = {
        "slos": [t.slo_id for t in targets],
        "services": [t.service_id for t in targets],
        "minute_bands": [minute_band.get(t.window_start, beyond) for t in targets],
        "hour_bands": [hour_band[start] for start in hour_starts],
        "latency": [t.latency for t in targets],
        "all_services": sorted({t.service_id for t in targets}),
        "latency_services": sorted({t.service_id for t in targets if t.latency}),
    }

    def bound_params(bounds: list[datetime], upto: datetime) -> dict:
        return common | {f"bound{i}": b for i, b in enumerate(bounds)} | {"upto": upto}

    minute_sql, minute_latency_sql = _minute_queries(
        {k: minute_band[v] for k, v in short.items()}, len(minute_bounds)
    )
    hour_sql, hour_latency_sql = _hour_queries(
        {k: hour_band[v] for k, v in long.items()}, len(hour_bounds)
    )
    minute_params, hour_params = bound_params(minute_bounds, now), bound_params(hour_bounds, hour)
    return Plan(
        minute=Query(minute_sql, minute_params),
        minute_latency=Query(minute_latency_sql, minute_params),
        hour=Query(hour_sql, hour_params),
        hour_latency=Query(hour_latency_sql, hour_params),
    )


def _fetch_both(counts: Query, histogram: Query, any_latency: bool) -> dict[str, dict]:
    rows = _fetch(counts.sql, counts.params)
    if any_latency:
        for slo_id, row in _fetch(histogram.sql, histogram.params).items():
            rows.setdefault(slo_id, {}).update(row)
    return rows


def read(targets: list[Target], now: datetime) -> dict[str, Readings]:
    """Window and lookback sums for every target, in two queries whatever their number (four
    when some are latency SLOs; one more when some exact-start window begins inside an
    hour)."""
    if not targets:
        return {}
    queries = plan(targets, now)
    any_latency = any(t.latency for t in targets)
    if len(targets) >= MANY and connection.in_atomic_block:
        with connection.cursor() as cursor:
            # The band aggregates of 10,000 services spill to disk with the default 4 MB;
            # for the evaluation's transaction only (a page reading one SLO needs none).
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    minutes = _fetch_both(queries.minute, queries.minute_latency, any_latency)
    hours = _fetch_both(queries.hour, queries.hour_latency, any_latency)
    heads = {t.slo_id: head for t in targets if (head := _head(t, now))}
    head_rows = {}
    if heads:
        segments = [
            (t.slo_id, t.service_id, *heads[t.slo_id]) for t in targets if t.slo_id in heads
        ]
        names = ("head_slos", "head_services", "head_from", "head_to")
        columns = zip(*segments, strict=True)
        head_rows = _fetch(_head_query(), dict(zip(names, map(list, columns), strict=True)))
    return {
        t.slo_id: _readings(
            t, minutes.get(t.slo_id), hours.get(t.slo_id), head_rows.get(t.slo_id), now
        )
        for t in targets
    }


def _readings(
    target: Target,
    minute_row: dict | None,
    hour_row: dict | None,
    head_row: dict | None,
    now: datetime,
) -> Readings:
    empty = Sums()
    m = (lambda p: _sums_from(minute_row, p)) if minute_row else (lambda p: empty)
    h = (lambda p: _sums_from(hour_row, p)) if hour_row else (lambda p: empty)
    lookbacks = {}
    for lb in LOOKBACKS:
        key = f"lb{_seconds(lb)}"
        lookbacks[lb] = m(key) if lb <= SHORT else h(key).add(m("tail"))
    long_window = now - target.window_start > SHORT
    window = h("win").add(m("tail")) if long_window else m("win")
    if long_window and head_row:
        window = window.add(_sums_from(head_row, "head"))
    return Readings(window=window, lookbacks=lookbacks)
