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

import contextlib
import functools
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection

from noc.timeseries.rollups import is_native, register_dependent
from services.choices import LATENCY_BUCKETS_MS
from services.timeseries import (
    CHECK_ROLLUP,
    CHECK_ROLLUP_10MIN,
    CHECK_ROLLUP_DAILY,
    CHECK_ROLLUP_HOURLY,
)
from slos.budget import LOOKBACKS

SHORT = timedelta(hours=6)
WORK_MEM = "64MB"  # for the evaluation's transaction only
MANY = 1000  # targets from which the read raises work_mem
HOUR = timedelta(hours=1)
LE = tuple(f"le_{ms}" for ms in LATENCY_BUCKETS_MS)
COUNTS = ("n_up", "n_degraded", "n_down", *LE)
NO_HISTOGRAM = dict.fromkeys(LATENCY_BUCKETS_MS, 0)  # shared: never changed in place
# Kept sums of the hourly rollup (slos_slisums) reach up to `now`'s hour − SETTLE; the hours
# after are read every time. The hourly refresh rewrites the hour before the current one (its
# overlap) and, in its first run of an hour, the one before that: kept hours are never among
# them, so only late writes (a refresh from further back, its dirty mark) invalidate them.
SETTLE = timedelta(hours=3)
KEPT_MARK = "slos_slisums"  # its RollupWatermark row: upto = where the kept sums end
KEPT_MINUTES_MARK = "slos_slisums_minute"
register_dependent(CHECK_ROLLUP_HOURLY.name, KEPT_MARK)
register_dependent(CHECK_ROLLUP.name, KEPT_MINUTES_MARK)
KEPT = ("n_up", "n_degraded", "n_down", "minutes", "good", *LE)


@dataclass
class Sums:
    n_up: float = 0
    n_degraded: float = 0
    n_down: float = 0
    le: dict[int, float] = field(default_factory=dict)
    minutes: float = 0  # minutes with at least one check
    good_minutes: float = 0  # minutes with no failed check

    def add(self, other: Sums) -> Sums:
        if other.le is NO_HISTOGRAM and len(self.le) == len(LATENCY_BUCKETS_MS):
            le = self.le  # nothing to add (histograms are never changed in place)
        elif self.le is NO_HISTOGRAM and len(other.le) == len(LATENCY_BUCKETS_MS):
            le = other.le
        else:
            le = {ms: self.le.get(ms, 0) + other.le.get(ms, 0) for ms in LATENCY_BUCKETS_MS}
        return Sums(
            self.n_up + other.n_up,
            self.n_degraded + other.n_degraded,
            self.n_down + other.n_down,
            le,
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


_PACKED = re.compile(r"@(\w+)(?::(\w+))?@")


def _sql(text: str) -> str:
    """`@type:name@` → a packed list parameter %(name)s as type[], `@type@` → the same, %s."""
    return _PACKED.sub(
        lambda m: (
            f"string_to_array(%({m[2]})s, ',', '')::{m[1]}[]"
            if m[2]
            else f"string_to_array(%s, ',', '')::{m[1]}[]"
        ),
        text,
    )


def packed(values: Iterable) -> str:
    """A list as one text parameter, read by `string_to_array(%s, ',', '')::type[]` (an
    empty field is NULL): the cursor quotes a list element by element in Python, a string at
    once. For ids (slugs), numbers, booleans, timestamps."""
    values = values if isinstance(values, list) else list(values)
    kinds = set(map(type, values))
    # The common lists at C speed: ids, numbers, floats with gaps (history and cache columns).
    if kinds <= {str}:
        return ",".join(values)
    if kinds <= {int}:
        return ",".join(map(str, values))
    if kinds <= {float, type(None)}:
        return ",".join(["" if v is None else repr(v) for v in values])
    if kinds <= {bool}:
        return ",".join(["t" if v else "f" for v in values])
    if kinds <= {datetime}:
        # a few distinct moments repeated (kept sums' starts): each formatted once (equal
        # moments in other zones are the same timestamptz)
        text = {v: v.isoformat() for v in set(values)}
        return ",".join(map(text.__getitem__, values))
    return ",".join(map(_field, values))


def _field(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def _band_sums(columns: dict[str, str]) -> str:
    """The sums one band of rollup rows contributes (per service). As integers, so that their
    sums are bigint (Python ints), not numeric: a band is at most 90 days of one service."""
    return ", ".join(f"sum({expr})::integer AS {name}" for name, expr in columns.items())


def _range_columns(prefix: str, band: str, columns: Iterable[str]) -> list[str]:
    """One range's sums for a target: the bands from `band` up (the ranges all end now)."""
    return [
        f"coalesce(sum(b.{c}) FILTER (WHERE b.band >= {band}), 0) AS {prefix}_{c}" for c in columns
    ]


def _kept_range_columns(prefix: str, bands: tuple[str, str, str, str], columns) -> list[str]:
    """A range whose middle is kept (slos_slisums_minute): the bands from `ge` up (the rows
    after the kept ones) less (`op` -) or plus (+) the bands in [lo, hi) (the rows between the
    kept sums' start and the range's)."""
    ge, lo, hi, op = bands
    return [
        f"coalesce(sum(b.{c}) FILTER (WHERE b.band >= {ge}), 0) {op} coalesce(sum(b.{c}) "
        f"FILTER (WHERE b.band >= {lo} AND b.band < {hi}), 0) AS {prefix}_{c}"
        for c in columns
    ]


@functools.cache
def _columns_of(prefix: str) -> tuple[operator.itemgetter, str, operator.itemgetter]:
    """What reads a range's count and histogram columns from a row (names formatted once, not
    per row): its counts, the name of its first histogram column, its histogram."""
    counts = [f"{prefix}_{c}" for c in ("n_up", "n_degraded", "n_down", "minutes", "good")]
    histogram = [f"{prefix}_le_{ms}" for ms in LATENCY_BUCKETS_MS]
    return operator.itemgetter(*counts), histogram[0], operator.itemgetter(*histogram)


def _targets_cte() -> str:
    return (
        "WITH t AS (SELECT * FROM unnest(@varchar:slos@, @varchar:services@, "
        "@int:minute_bands@, @int:minute_los@, @int:minute_his@, "
        "@int:hour_bands@, @bool:latency@) "
        "AS t(slo_id, service_id, minute_band, minute_lo, minute_hi, hour_band, latency))"
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
    rollup: str, columns: dict[str, str], ranges: dict, *, latency: bool, kept: bool = False
) -> str:
    """`kept`: the ranges are (ge, lo, hi) bands (_kept_range_columns), and the rows read are
    those from %(fresh)s on and the minutes listed in %(edges)s."""
    band = "width_bucket(r.bucket, %(bounds)s::timestamptz[])"  # bounds ≤ the row's bucket
    services = "latency_services" if latency else "all_services"
    of_range = _kept_range_columns if kept else _range_columns
    selected = [col for prefix, start in ranges.items() for col in of_range(prefix, start, columns)]
    source = f"{rollup} r WHERE r.bucket >= %(bound0)s AND r.bucket < %(upto)s"
    if kept:
        source = (
            f"(SELECT * FROM {rollup} WHERE bucket >= %(fresh)s AND bucket < %(upto)s "
            f"AND service_id = ANY(@varchar:{services}@) UNION ALL "
            f"SELECT * FROM {rollup} WHERE bucket = ANY(%(edges)s::timestamptz[]) "
            f"AND bucket < %(fresh)s AND service_id = ANY(@varchar:{services}@)) r "
            "WHERE true"
        )
    return (
        f"{_targets_cte()}, b AS MATERIALIZED ("
        f"SELECT r.service_id, {band} AS band, {_band_sums(columns)} FROM {source} "
        f"AND r.service_id = ANY(@varchar:{services}@) GROUP BY 1, 2) "
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


def _minute_queries(bands: dict, *, kept: bool = False) -> tuple[str, str]:
    # Every minute range read here starts within the last 6 h (longer windows come from the
    # hourly rollup), so the lower bound prunes partitions and uses the bucket index.
    if kept:
        ranges = {prefix: tuple(map(str, band)) for prefix, band in bands.items()}
        ranges["win"] = ("t.minute_band", "t.minute_lo", "t.minute_hi", "-")
    else:
        ranges = {prefix: str(band) for prefix, band in bands.items()}
        ranges["win"] = "t.minute_band"
    counts = _counts(minutes=WITH_DATA, good_minutes=GOOD_MINUTE)
    rollup = "services_checkrollup"
    return (
        _banded_query(rollup, counts, ranges, latency=False, kept=kept),
        _banded_query(rollup, HISTOGRAM, ranges, latency=True, kept=kept),
    )


def _hour_queries(bands: dict[str, int]) -> tuple[str, str]:
    ranges = {prefix: str(band) for prefix, band in bands.items()}
    # The hour the window starts in (rolling), or the first whole hour in it (exact start).
    ranges["win"] = "t.hour_band"
    counts = _counts(minutes="r.m_total", good_minutes="r.m_good_avail")
    rollup = "services_checkrollup_hourly"
    return (
        _banded_query(rollup, counts, ranges, latency=False),
        _banded_query(rollup, HISTOGRAM, ranges, latency=True),
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
        "WITH h AS (SELECT * FROM unnest(@varchar:head_slos@, @varchar:head_services@, "
        "@timestamptz:head_from@, @timestamptz:head_to@) "
        "AS h(slo_id, service_id, t_from, t_to)) "
        f"SELECT h.slo_id, {', '.join(columns)} FROM h "
        "JOIN services_checkrollup r ON r.service_id = h.service_id "
        "AND r.bucket >= h.t_from AND r.bucket < h.t_to GROUP BY h.slo_id"
    )


class Native(list):
    """A list sent as a PostgreSQL array, not packed: a few values a query uses on every row
    (band bounds), where the stable text-to-timestamptz cast of a packed list would be
    recomputed for each."""


def _pack(value):
    return packed(value) if isinstance(value, list) and not isinstance(value, Native) else value


def execute(cursor, sql: str, params) -> None:
    """Runs `sql` with its @type:name@ / @type@ list parameters packed (_sql, packed)."""
    if isinstance(params, dict):
        params = {k: _pack(v) for k, v in params.items()}
    else:
        params = [_pack(v) for v in params]
    cursor.execute(_sql(sql), params)


def _fetch(sql: str, params: dict) -> dict[str, dict]:
    with connection.cursor() as cursor:
        execute(cursor, sql, params)
        names = [c.name for c in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


@dataclass
class Readings:
    window: Sums
    lookbacks: dict[timedelta, Sums]


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_start(target: Target) -> datetime:
    """Where the window's hourly sum begins: the hour containing its start, or, for an exact
    start, the first whole hour at or after it."""
    return _first_hour(target.window_start, target.exact_start)


@functools.lru_cache(maxsize=4096)
def _first_hour(window_start: datetime, exact_start: bool) -> datetime:
    # cached: the SLOs of one rolling window share their start
    floor = window_start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if exact_start and floor < window_start:
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


def _block(moment: datetime) -> datetime:
    return EPOCH + (moment - EPOCH) // BLOCK * BLOCK


def _kept_minute_start(
    start: datetime, fresh: datetime | None, nearest: bool = False
) -> datetime | None:
    """Where the kept minute sums of a range starting at `start` begin (None: not kept): the
    block holding `start` (the minutes between the two are read and taken away), or, with
    `nearest`, the next block when `start` is in the second half of its block (the minutes
    between are read and added: at most 5 minutes a range instead of 9). `nearest` is for the
    lookbacks and the current hour: their starts move with `now`, and they reach the second
    half of a block at hh:x5, when `fresh` moves too (so a range changes its kept block only in
    the minute where every kept block slides anyway)."""
    if fresh is None:
        return None
    block = _block(start)
    if nearest and start - block >= BLOCK / 2 and block + BLOCK < fresh:
        return block + BLOCK
    return block if block < fresh else None


def plan(
    targets: list[Target],
    now: datetime,
    kept_upto: datetime | None = None,
    kept_minutes: datetime | None = None,
) -> Plan:
    """The queries for these targets (bench/slos.py EXPLAINs them too). With `kept_upto`, the
    hourly queries read only the hours from there on (the sums before it are kept). With
    `kept_minutes`, the minute queries read the minutes from there on and, of each range whose
    start's block is kept, the minutes between the block's start and the range's."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    short = {f"lb{_seconds(lb)}": now - lb for lb in LOOKBACKS if lb <= SHORT}
    short["tail"] = hour
    # A window of at most 6 h so far is summed from minutes: its start is a band bound too.
    window_starts = {t.window_start for t in targets if now - t.window_start <= SHORT}
    if kept_minutes is not None:
        return _plan_kept_minutes(targets, now, short, window_starts, kept_upto, kept_minutes)
    return _plan(targets, now, short, window_starts, kept_upto)


def _plan(targets, now, short, window_starts, kept_upto) -> Plan:
    hour = now.replace(minute=0, second=0, microsecond=0)
    minute_bounds, minute_band = _bands({now - SHORT, *short.values(), *window_starts})
    long = {
        f"lb{_seconds(lb)}": (now - lb).replace(minute=0, second=0, microsecond=0)
        for lb in LOOKBACKS
        if lb > SHORT
    }
    hour_starts = [_hour_start(t) for t in targets]
    if kept_upto is not None:
        long = {k: max(v, kept_upto) for k, v in long.items()}
        hour_starts = [max(start, kept_upto) for start in hour_starts]
    hour_bounds, hour_band = _bands({*long.values(), *hour_starts})
    beyond = len(minute_bounds) + 1  # no row: the window is summed hourly
    common = {
        "slos": [t.slo_id for t in targets],
        "services": [t.service_id for t in targets],
        "minute_bands": [minute_band.get(t.window_start, beyond) for t in targets],
        "minute_los": [0] * len(targets),
        "minute_his": [0] * len(targets),
        "hour_bands": [hour_band[start] for start in hour_starts],
        "latency": [t.latency for t in targets],
        "all_services": sorted({t.service_id for t in targets}),
        "latency_services": sorted({t.service_id for t in targets if t.latency}),
    }

    common = {k: packed(v) for k, v in common.items()}  # once, for the four queries

    def bound_params(bounds: list[datetime], upto: datetime) -> dict:
        return common | {"bound0": bounds[0], "bounds": Native(bounds), "upto": upto}

    minute_sql, minute_latency_sql = _minute_queries({k: minute_band[v] for k, v in short.items()})
    hour_sql, hour_latency_sql = _hour_queries({k: hour_band[v] for k, v in long.items()})
    minute_params, hour_params = bound_params(minute_bounds, now), bound_params(hour_bounds, hour)
    return Plan(
        minute=Query(minute_sql, minute_params),
        minute_latency=Query(minute_latency_sql, minute_params),
        hour=Query(hour_sql, hour_params),
        hour_latency=Query(hour_latency_sql, hour_params),
    )


def _plan_kept_minutes(targets, now, short, window_starts, kept_upto, fresh) -> Plan:
    base = _plan(targets, now, short, window_starts, kept_upto)  # the hourly queries
    bound_set, edges = {fresh}, set()
    # (start, nearest): lookbacks and the hour from the nearest block, windows from theirs
    starts = {*((start, True) for start in short.values()), *((w, False) for w in window_starts)}
    for start, nearest in starts:
        block = _kept_minute_start(start, fresh, nearest)
        if block is None:
            bound_set.add(start)
            continue
        bound_set.update((block, start))
        minute = min(block, start)
        while minute < max(block, start):
            edges.add(minute)
            minute += MINUTE
    bounds, band = _bands(bound_set)

    def bands_of(start: datetime, nearest: bool = False) -> tuple[int, int, int, str]:
        """(bands from, and the bands [lo, hi) taken away or added to the kept sums)."""
        block = _kept_minute_start(start, fresh, nearest)
        if block is None:
            return (band[start], 0, 0, "-")
        if block <= start:  # the minutes [block, start) taken away
            return (band[fresh], band[block], band[start], "-")
        return (band[fresh], band[start], band[block], "+")  # [start, block) added

    beyond = (len(bounds) + 1, 0, 0, "-")  # no row: the window is summed hourly
    windows = [
        bands_of(t.window_start) if now - t.window_start <= SHORT else beyond for t in targets
    ]
    params = base.minute.params | {
        "bound0": bounds[0], "bounds": Native(bounds), "upto": now, "fresh": fresh,
        "edges": Native(sorted(edges)),
        "minute_bands": packed(w[0] for w in windows),
        "minute_los": packed(w[1] for w in windows),
        "minute_his": packed(w[2] for w in windows),
    }  # fmt: skip
    sql, latency_sql = _minute_queries(
        {k: bands_of(v, nearest=True) for k, v in short.items()}, kept=True
    )
    return replace(base, minute=Query(sql, params), minute_latency=Query(latency_sql, params))


def _fetch_both(counts: Query, histogram: Query, any_latency: bool) -> dict[str, dict]:
    rows = _fetch(counts.sql, counts.params)
    if any_latency:
        for slo_id, row in _fetch(histogram.sql, histogram.params).items():
            rows.setdefault(slo_id, {}).update(row)
    return rows


def read(targets: list[Target], now: datetime, *, keep: bool = False) -> dict[str, Readings]:
    """Window and lookback sums for every target, in two queries whatever their number (four
    when some are latency SLOs; one more when some exact-start window begins inside an
    hour).

    `keep` (the every-minute evaluation, in its transaction and under its lock): the sums of
    the hourly rollup before `now`'s hour − SETTLE are kept between reads (slos_slisums), so
    a read scans only the last hours and the rows the kept sums gained or lost since the last
    read (an hour sliding in or out of a rolling range: about one row per range per hour).
    Same readings as without it."""
    if not targets:
        return {}
    kept_upto = kept_minutes = None
    if keep and is_native(CHECK_ROLLUP_HOURLY):
        kept_upto = now.replace(minute=0, second=0, microsecond=0) - SETTLE
        kept_minutes = _block(now - MINUTE_SETTLE)
    queries = plan(targets, now, kept_upto, kept_minutes)
    any_latency = any(t.latency for t in targets)
    if len(targets) >= MANY and connection.in_atomic_block:
        with connection.cursor() as cursor:
            # The band aggregates of 10,000 services spill to disk with the default 4 MB;
            # for the evaluation's transaction only (a page reading one SLO needs none).
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    kept_hours: dict[tuple, Vector] = {}
    kept_mins: dict[tuple, Vector] = {}
    if keep and kept_upto is not None:
        # marks first (locked): a refresh committing meanwhile marks them for the next read
        kept_hours = _kept_sums(HOURS, _needed_hours(targets, now, kept_upto), kept_upto)
        kept_mins = _kept_sums(MINUTES, _needed_minutes(targets, now, kept_minutes), kept_minutes)
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
    readings = _reader(now, kept_minutes, kept_hours, kept_mins)
    return {
        t.slo_id: readings(t, minutes.get(t.slo_id), hours.get(t.slo_id), head_rows.get(t.slo_id))
        for t in targets
    }


def _range_sums(row: dict | None, prefix: str, kept: Vector | None, latency: bool) -> Sums:
    """One range's sums: what was read of it (its `prefix` columns of the target's row), plus
    the kept sums before that (when some are)."""
    if row:
        counts, first_bucket, histogram = _columns_of(prefix)
        n_up, n_degraded, n_down, minutes, good = counts(row)
        if first_bucket in row:
            le = dict(zip(LATENCY_BUCKETS_MS, histogram(row), strict=True))
        else:
            le = NO_HISTOGRAM  # not read: not a latency SLO
    else:
        n_up = n_degraded = n_down = minutes = good = 0
        le = NO_HISTOGRAM
    if kept is not None:
        n_up, n_degraded, n_down = n_up + kept[0], n_degraded + kept[1], n_down + kept[2]
        minutes, good = minutes + kept[3], good + kept[4]
        if latency:  # (others are read without a histogram, as the queries read them)
            le = {ms: le.get(ms, 0) + kept[i] for i, ms in enumerate(LATENCY_BUCKETS_MS, 5)}
    return Sums(n_up, n_degraded, n_down, le, minutes, good)


def _reader(
    now: datetime,
    fresh: datetime | None,
    kept_hours: dict[tuple[str, datetime], Vector],
    kept_minutes: dict[tuple[str, datetime], Vector],
):
    """A function giving one target's readings from its rows and the kept sums. What all
    targets share (where each lookback starts and which kept sums it continues) is worked out
    here, once."""
    # A minute range: what was read (the minutes after its kept sums, less those between
    # their start and the range's) plus the kept sums from the block holding its start. An
    # hourly range: what was read plus the kept sums of the hours before.
    tail_block = _kept_minute_start(now.replace(minute=0, second=0, microsecond=0), fresh, True)
    # (lookback, its columns' prefix, summed per minute, where its kept sums start)
    ranges = [
        (lb, f"lb{_seconds(lb)}", True, _kept_minute_start(now - lb, fresh, nearest=True))
        if lb <= SHORT
        else (lb, f"lb{_seconds(lb)}", False, _hour_floor(now - lb))
        for lb in LOOKBACKS
    ]
    no_block = object()  # a range without kept minute sums: no key has it

    def readings(target: Target, minute_row, hour_row, head_row) -> Readings:
        service, latency = target.service_id, target.latency
        kept_m = kept_minutes.get
        tail = _range_sums(minute_row, "tail", kept_m((service, tail_block or no_block)), latency)
        lookbacks = {
            lb: _range_sums(minute_row, prefix, kept_m((service, start or no_block)), latency)
            if short
            else _range_sums(hour_row, prefix, kept_hours.get((service, start)), latency).add(tail)
            for lb, prefix, short, start in ranges
        }
        if now - target.window_start > SHORT:
            kept = kept_hours.get((service, _hour_start(target)))
            window = _range_sums(hour_row, "win", kept, latency).add(tail)
            if head_row:
                window = window.add(_range_sums(head_row, "head", None, latency))
        else:
            block = _kept_minute_start(target.window_start, fresh) or no_block
            window = _range_sums(minute_row, "win", kept_m((service, block)), latency)
        return Readings(window=window, lookbacks=lookbacks)

    return readings


# --- kept sums -----------------------------------------------------------------------------------
#
# Two families, one per rollup. Hours: per service and range start (a rolling window's or a
# 1 d / 3 d lookback's start hour, a calendar window's), the sums of the hourly rows from the
# start to `upto` (now's hour − SETTLE). Minutes: per service and the 10-minute block holding a
# range's start, or for a lookback starting in the second half of its block the next one (the 5
# min … 6 h lookbacks, the current hour, windows of at most 6 h so far), the sums of the minute
# rows from the block's start to `upto` (now − MINUTE_SETTLE, down to its block). Each as 13
# integers. A read at the same `upto` uses them as they are; one at another `upto` derives each
# from the kept sums of its service whose start is nearest: those, plus the rows between the old
# and new start (with a sign) and between the old and new `upto`, summed for all of them in one
# pass over just those rows. A range with nothing near (a new SLO, an edited window, a new
# calendar period), or all of a family when its sums are invalid (a refresh rewrote a bucket
# before `upto`: late results), is summed afresh in one statement: whole buckets of the next
# coarser rollup (days for the hourly family, hours for the minute one) where that rollup is
# current, and the family's own rows at the range's ends (a cold 30-day range: 30 daily rows and
# at most two days' hours, not 720 hourly rows; a 6-hour one: hourly rows and the minutes of at
# most two hours, not 360 minute rows).
# The process that wrote the kept sums remembers them (checked against a stamp on their watermark
# row), so a steady minute does not read them.

Vector = tuple[int, ...]
ZERO: Vector = (0,) * len(KEPT)
MINUTE = timedelta(minutes=1)
BLOCK = timedelta(minutes=10)
MINUTE_SETTLE = timedelta(minutes=5)  # the minute refresh rewrites its last 2 minutes
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Coarse:
    """A rollup of a family's source into bigger buckets (the daily rollup of the hourly one,
    the hourly of the per-minute one). Summing a range afresh, its whole buckets stand for the
    source rows they sum, up to where they are complete and not awaiting a recomputation (its
    watermark: `upto`, `dirty_since`); the source is read for the rest."""

    source: str
    bucket: timedelta
    expressions: dict[str, str]  # KEPT column → its expression over a row r of it


@dataclass(frozen=True)
class Family:
    mark: str  # its RollupWatermark row: upto = where the kept sums end
    table: str
    source: str  # the rollup summed
    expressions: dict[str, str]  # KEPT column → its expression over a source row r
    # Coarser rollups of the source, finest first: a cold sum reads the one that is current
    # furthest (the finest of those), so a rollup still catching up falls back to the next.
    coarse: tuple[Coarse, ...] = ()


HOURLY_EXPRESSIONS = {
    "n_up": "r.n_up", "n_degraded": "r.n_degraded", "n_down": "r.n_down",
    "minutes": "r.m_total", "good": "r.m_good_avail", **HISTOGRAM,
}  # fmt: skip
HOURS = Family(
    KEPT_MARK, "slos_slisums", "services_checkrollup_hourly", HOURLY_EXPRESSIONS,
    (Coarse(CHECK_ROLLUP_DAILY.name, CHECK_ROLLUP_DAILY.bucket, HOURLY_EXPRESSIONS),),
)  # fmt: skip
MINUTES = Family(
    KEPT_MINUTES_MARK, "slos_slisums_minute", "services_checkrollup",
    {"n_up": "r.n_up", "n_degraded": "r.n_degraded", "n_down": "r.n_down",
     "minutes": WITH_DATA, "good": GOOD_MINUTE, **HISTOGRAM},
    (
        Coarse(CHECK_ROLLUP_10MIN.name, CHECK_ROLLUP_10MIN.bucket, HOURLY_EXPRESSIONS),
        Coarse(CHECK_ROLLUP_HOURLY.name, CHECK_ROLLUP_HOURLY.bucket, HOURLY_EXPRESSIONS),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Remembered:
    """The kept sums of one family as this process last wrote or read them."""

    stamp: datetime
    kept: dict[tuple, tuple[bool, Vector]]  # (service, start) → (latency, sums)
    values: dict[tuple, Vector]  # the same sums alone
    latency: frozenset  # the keys whose histogram is kept


_REMEMBERED: dict[str, Remembered] = {}


def _plus(a: Vector, b: Vector, sign: int = 1) -> Vector:
    """a + b, or a − b (sign −1), element by element."""
    return tuple(map(operator.add if sign > 0 else operator.sub, a, b))


def _span(delta: timedelta) -> float:
    return abs(delta.total_seconds())


def _needed_hours(targets: list[Target], now: datetime, upto: datetime) -> dict[tuple, bool]:
    """(service, start) → whether its latency histogram is needed, for every range summed
    from the hourly rollup that starts before `upto` (within the rollup's retention: older
    rows may be dropped with their partition, which marks nothing, so those are not kept)."""
    oldest = now - timedelta(days=settings.NOC_CHECK_ROLLUP_RETENTION_DAYS) + timedelta(days=1)
    lookbacks = [_hour_floor(now - lb) for lb in LOOKBACKS if lb > SHORT]
    needed: dict[tuple, bool] = {}
    for t in targets:
        starts = [*lookbacks, _hour_start(t)] if now - t.window_start > SHORT else lookbacks
        for start in starts:
            if oldest <= start < upto:
                key = (t.service_id, start)
                needed[key] = needed.get(key, False) or t.latency
    return needed


def _needed_minutes(targets: list[Target], now: datetime, fresh: datetime) -> dict[tuple, bool]:
    """(service, block) → latency histogram needed, for every minute range whose start's
    block is kept: the short lookbacks', the current hour's (all targets), and windows of at
    most 6 h so far."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    starts = [*(now - lb for lb in LOOKBACKS if lb <= SHORT), hour]
    common = [
        b for start in starts if (b := _kept_minute_start(start, fresh, nearest=True)) is not None
    ]
    needed: dict[tuple, bool] = {}
    for t in targets:
        block = _kept_minute_start(t.window_start, fresh)
        blocks = [*common, block] if block is not None and now - t.window_start <= SHORT else common
        for block in blocks:
            key = (t.service_id, block)
            needed[key] = needed.get(key, False) or t.latency
    return needed


def _kept_query(
    family: Family, fine: list[tuple[datetime, datetime]], coarse: Coarse | None, filtered: bool
) -> str:
    """Sums of [start, upto) per (service, start) in one statement: one banded pass over the
    family's rows in the `fine` intervals (bands bounded by %(bounds)s) and one over the coarse
    rollup's rows in [%(coarse0)s, %(coarse_end)s) (bands bounded by %(coarse_bounds)s), the
    counts and the histogram of every row (the histogram is kept for latency SLOs' services
    only, but a second pass for them read every page again, their rows being on all of them,
    and a lookup a row to sum it only for them cost more than summing it). Each start's parts
    (_split: its fine or coarse bands in [lo, hi), added or taken away; the same for every
    service) are joined with the keys, then each with its bands. Rows are filtered by service
    (`filtered`) only when the SLOs' services are fewer than half of all services: the filter
    (a hashed lookup a row) costs about half of what aggregating a row does, and the join
    drops the others' sums anyway."""
    values = [f"coalesce(sum(b.{c} * k.sign), 0)" for c in KEPT]
    where = "AND r.service_id = ANY(@varchar:all_services@)" if filtered else ""
    # the fine intervals (disjoint) one range scan each: the bucket index, or a partition's
    # rows in order, where one scan of [first, last) would read every row between them
    scans = (
        " UNION ALL ".join(
            f"SELECT * FROM {family.source} WHERE bucket >= %(fine{i}_from)s "
            f"AND bucket < %(fine{i}_to)s"
            for i in range(len(fine))
        )
        or f"SELECT * FROM {family.source} WHERE false"
    )
    # (without coarse buckets to read, the same statement reads none of the source's)
    of = coarse or family
    return (
        "WITH keys AS (SELECT * FROM unnest(@varchar:key_services@, @int:key_starts@) "
        "AS k(service_id, start)), "
        "parts AS (SELECT * FROM unnest(@int:part_starts@, @bool:part_coarse@, @int:part_los@, "
        "@int:part_his@, @int:part_signs@) AS p(start, coarse, lo, hi, sign)), "
        "k AS (SELECT * FROM keys JOIN parts USING (start)), "
        "f AS NOT MATERIALIZED (SELECT r.service_id, "
        "width_bucket(r.bucket, %(bounds)s::timestamptz[]) AS band, "
        f"{_band_sums(family.expressions)} FROM ({scans}) r WHERE true {where} GROUP BY 1, 2), "
        "c AS NOT MATERIALIZED (SELECT r.service_id, "
        f"width_bucket(r.bucket, %(coarse_bounds)s::timestamptz[]) AS band, "
        f"{_band_sums(of.expressions)} FROM {of.source} r WHERE r.bucket >= %(coarse0)s "
        f"AND r.bucket < %(coarse_end)s {where} GROUP BY 1, 2) "
        f"SELECT k.service_id, k.start, {', '.join(values)} FROM k JOIN ("
        "SELECT f.*, false AS coarse FROM f UNION ALL SELECT c.*, true FROM c) b "
        "ON b.service_id = k.service_id AND b.coarse = k.coarse AND b.band >= k.lo "
        "AND b.band < k.hi GROUP BY 1, 2"
    )


def _ceil(moment: datetime, size: timedelta) -> datetime:
    floor = _floor(moment, size)
    return floor if floor == moment else floor + size


def _floor(moment: datetime, size: timedelta) -> datetime:
    return EPOCH + (moment - EPOCH) // size * size


def _afresh_context(
    coarse: tuple[Coarse, ...], upto: datetime, *, count: bool
) -> tuple[dict[str, datetime], int]:
    """Where each coarse rollup's buckets stop standing for the family's rows, up to `upto`:
    at the end of its complete buckets (its watermark), and before the oldest bucket it must
    compute again (`dirty_since`: rows under it were rewritten, late results); none for one
    not refreshed yet (or not here). A bucket rewritten after this read marks the family's own
    watermark too (a dependent of the same refresh, which waits for this evaluation), so the
    sums kept now are summed again. And, with `count`, how many services there are (a steady
    minute sums no range: the same statement, without counting every service)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN %s THEN (SELECT count(*) FROM services_service) ELSE 0 END, "
            "w.name, w.upto, w.dirty_since "
            "FROM (SELECT 1) one LEFT JOIN noc_rollupwatermark w ON w.name = ANY(%s)",
            [count, [c.source for c in coarse]],
        )
        rows = cursor.fetchall()
    marks = {name: (mark_upto, dirty_since) for _, name, mark_upto, dirty_since in rows}
    ends = {}
    for rollup in coarse:
        if rollup.source in marks:
            mark_upto, dirty_since = marks[rollup.source]
            moments = [upto, mark_upto] if dirty_since is None else [upto, mark_upto, dirty_since]
            ends[rollup.source] = _floor(min(moments), rollup.bucket)
    return ends, rows[0][0]


def _furthest(coarse: tuple[Coarse, ...], ends: dict[str, datetime]):
    """The coarse rollup current furthest (the finest on a tie) and its end, or (None, None)."""
    best = None
    for rollup in coarse:
        if rollup.source in ends and (best is None or ends[rollup.source] > ends[best.source]):
            best = rollup
    return best, (ends[best.source] if best else None)


def _finer_rows(family: Family, starts, upto: datetime, ends: dict[str, datetime]) -> Family:
    """The family to read the rows at the ranges' ends from: its finest coarse rollup instead
    of its own rows when every range starts and ends on that rollup's buckets and it is current
    up to `upto` (the minute sums: 10-minute blocks, read as 10-minute rows), the next coarse
    rollups then standing for whole buckets; else the family itself."""
    finest = family.coarse[0] if len(family.coarse) > 1 else None
    if finest is None or ends.get(finest.source) != upto:
        return family
    if any(_floor(start, finest.bucket) != start for start in starts):
        return family
    return replace(
        family, source=finest.source, expressions=finest.expressions, coarse=family.coarse[1:]
    )


NEVER = 1 << 30  # a band after every row's


@dataclass(frozen=True)
class Split:
    """How the ranges of one afresh sum are read: the family's rows in `fine` (disjoint
    intervals) banded by `bounds`, the coarse rollup's in [coarse_bounds[0], coarse_end)
    banded by `coarse_bounds`; per start, its parts: (coarse, lo, hi, sign), its bands in
    [lo, hi) of the coarse rollup or of the family's rows, added (1) or taken away (−1)."""

    fine: list[tuple[datetime, datetime]]
    bounds: list[datetime]
    coarse_bounds: list[datetime]
    coarse_end: datetime
    parts: dict[datetime, list[tuple[bool, int, int, int]]]
    coarse: bool  # some coarse buckets are read


def _split(starts: set[datetime], upto: datetime, size: timedelta | None, end: datetime | None):
    """[start, upto) for each start: the coarse buckets from the one nearest its start up to
    `end` (where the coarse rollup stops being current), the rows between the two (added when
    the start is before that bucket, taken away when inside it: at most half a bucket), and the
    rows from `end` on; or all its rows when no coarse bucket fits (or there is none)."""
    firsts: dict[datetime, datetime] = {}  # start → its first coarse bucket, before `end`
    if size is not None and end is not None:
        for start in starts:
            floor = _floor(start, size)
            first = floor if start - floor < size / 2 else floor + size
            if first < end:
                firsts[start] = first
    intervals = [
        (min(start, firsts[start]), max(start, firsts[start])) if start in firsts else (start, upto)
        for start in starts
    ]
    if firsts:
        intervals.append((end, upto))
    fine = _merged([(lo, hi) for lo, hi in intervals if lo < hi])
    bounds, band = _bands({*starts, *firsts.values(), *([end] if firsts else [])})
    coarse_bounds, cband = _bands(set(firsts.values()))
    parts: dict[datetime, list[tuple[bool, int, int, int]]] = {}
    for start in starts:
        if start not in firsts:
            parts[start] = [(False, band[start], NEVER, 1)]
            continue
        first = firsts[start]
        head = (
            (False, band[start], band[first], 1)  # the rows before its first bucket
            if start <= first
            else (False, band[first], band[start], -1)  # its bucket's rows before it
        )
        parts[start] = [head, (False, band[end], NEVER, 1), (True, cband[first], NEVER, 1)]
    coarse_end = end if firsts else upto
    return Split(fine, bounds, coarse_bounds or [coarse_end], coarse_end, parts, bool(firsts))


def _merged(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[list[datetime]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _sum_afresh(family: Family, keys: dict[tuple, bool], upto: datetime) -> dict[tuple, Vector]:
    """The ranges' sums straight from the rollups, in one statement (run even for no range: an
    evaluation runs the same statements whatever it finds kept): counts for all, histograms
    where needed. Whole buckets of the coarse rollup stand for the rows they sum (a 30-day
    range: 30 daily rows and the hours at its ends, not 720 hourly rows)."""
    starts = sorted({start for _, start in keys})
    number = {start: i for i, start in enumerate(starts)}
    ends, services = _afresh_context(family.coarse, upto, count=bool(keys))
    rows_of = _finer_rows(family, starts, upto, ends)
    coarse, end = _furthest(rows_of.coarse, ends)
    split = _split(set(starts), upto, coarse.bucket if coarse else None, end)
    parts = [(start, part) for start in starts for part in split.parts[start]]
    params = {
        "bounds": Native(split.bounds),
        "coarse_bounds": Native(split.coarse_bounds),
        "coarse0": split.coarse_bounds[0],
        "coarse_end": split.coarse_end,
        "key_services": [service for service, _ in keys],
        "key_starts": [number[start] for _, start in keys],
        "part_starts": [number[start] for start, _ in parts],
        "part_coarse": [part[0] for _, part in parts],
        "part_los": [part[1] for _, part in parts],
        "part_his": [part[2] for _, part in parts],
        "part_signs": [part[3] for _, part in parts],
    }
    for i, (lower, upper) in enumerate(split.fine):
        params[f"fine{i}_from"], params[f"fine{i}_to"] = lower, upper
    slo_services = {service for service, _ in keys}
    filtered = services > 2 * len(slo_services)
    if filtered:  # (only then read by the statement)
        params["all_services"] = sorted(slo_services)
    sql = _kept_query(rows_of, split.fine, coarse if split.coarse else None, filtered)
    result = {key: ZERO for key in keys}
    with _parallel(len(keys) >= MANY):
        rows = _rows(sql, params)
    for service, start_number, *values in rows:
        key = (service, starts[start_number])
        # the histogram kept where needed (the others' kept sums have none, as before)
        result[key] = tuple(values) if keys[key] else (*values[:5], *ZERO[5:])
    return result


# Summing every kept range afresh (a cold evaluation: the first after a deploy, or after late
# results) reads, for every service, a few sums per row grouped by service and band: of the
# coarse rollups' rows (days, hours) and of the family's rows at the ranges' ends, or all of a
# range's rows where its coarse rollup is behind (a new installation: the whole 30 days of
# hourly rows until the daily rollup has caught up). PostgreSQL plans that
# aggregate on one core: it expects as many groups as rows (a band is an expression) and so a
# costly gather of the partial aggregates, where there are a few per service. With parallel
# workers costed as free it scans and aggregates in parallel, as the plain scan does (the same
# sums: integers, in any order). For the same wrong guess it would sort the rows by service
# and band (on disk: 190 MB a process at 10,000 SLOs), or gather them all to hash them in one
# process, rather than hash them in each worker into a table it expects not to fit: the groups
# are a few per service (some 300 bytes each: 15 MB at 10,000 SLOs), so sorting is off and
# work_mem is raised to what the guess needs (memory is used by the groups there are). The rows
# of the ranges' ends are read by bitmap, not index scans: their pages in order, 5 % less.
PLANNER = {
    "parallel_setup_cost": "0", "parallel_tuple_cost": "0", "enable_sort": "off",
    "work_mem": "256MB", "enable_indexscan": "off",
}  # fmt: skip


@contextlib.contextmanager
def _parallel(wanted: bool):
    if not (wanted and connection.in_atomic_block):
        yield
        return
    names = list(PLANNER)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT "
            + ", ".join(
                f"current_setting('{name}'), set_config('{name}', %s, true)" for name in names
            ),
            list(PLANNER.values()),
        )
        before = cursor.fetchone()[::2]
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT " + ", ".join(f"set_config('{name}', %s, true)" for name in names), before
            )


def _sum_segments(
    family: Family, services: list[str], intervals: list[tuple[datetime, datetime]]
) -> dict[tuple[str, tuple], Vector]:
    """Sums of the family's rows in each of these intervals (the same few for every service:
    an hour or a block sliding) for each of these services, in one pass over just those rows
    (per service and band); then each interval from its bands. (service, interval) → sums,
    none for a service without a row in it."""
    bounds, band = _bands({moment for interval in intervals for moment in interval})
    inside = " OR ".join(["(r.bucket >= %s AND r.bucket < %s)"] * len(intervals)) or "false"
    sums = ", ".join(f"sum({e})::bigint" for e in family.expressions.values())
    sql = (
        f"SELECT r.service_id, width_bucket(r.bucket, %s::timestamptz[]), {sums} "
        f"FROM {family.source} r WHERE r.service_id = ANY(@varchar@) AND ({inside}) "
        "GROUP BY 1, 2"
    )
    params = [Native(bounds), services]
    params += [moment for interval in intervals for moment in interval]
    by_band: dict[int, dict[str, Vector]] = {}
    for service, band_number, *values in _rows(sql, params):
        by_band.setdefault(band_number, {})[service] = tuple(values)
    result: dict[tuple[str, tuple], Vector] = {}
    for interval in intervals:
        numbers = range(band[interval[0]], band[interval[1]])
        if len(numbers) == 1:  # most: one hour or one block
            for service, values in by_band.get(numbers[0], {}).items():
                result[service, interval] = values
            continue
        for number in numbers:
            for service, values in by_band.get(number, {}).items():
                result[service, interval] = _plus(result.get((service, interval), ZERO), values)
    return result


def _rows(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        execute(cursor, sql, params)
        return cursor.fetchall()


def _kept_sums(family: Family, needed: dict[tuple, bool], upto: datetime) -> dict[tuple, Vector]:
    """The sums of the family's rows of [start, upto) for every (service, start) needed,
    from the kept ones and what changed since; the kept ones replaced by these."""
    mark = _kept_mark(family, upto)
    valid = mark.dirty_since is None or mark.dirty_since >= mark.upto
    exact: dict[tuple, tuple[bool, Vector]] = {}
    remembered = _REMEMBERED.get(family.mark)
    if remembered and (not valid or mark.refreshed_at != remembered.stamp):
        remembered = None
    if (
        remembered
        and upto == mark.upto
        and needed.keys() == remembered.values.keys()
        and {key for key, latency in needed.items() if latency} <= remembered.latency
    ):
        # A steady minute: the kept sums as they are (the statements below do nothing).
        _sum_afresh(family, {}, upto)
        _sum_segments(family, [], [])
        _keep(family, {}, {}, upto, gone=set(), stamp=mark.refreshed_at)
        return remembered.values
    if valid:
        if remembered:
            exact = remembered.kept
        else:
            for service, start, latency, *values in _rows(
                f"SELECT service_id, start, latency, {', '.join(KEPT)} FROM {family.table}", []
            ):
                exact[service, start] = (latency, tuple(values))
    same_upto = valid and upto == mark.upto
    kept: dict[str, list[tuple[datetime, bool, Vector]]] = {}  # by service, when needed
    if not same_upto or any(key not in exact for key in needed):
        for (service, start), (latency, values) in exact.items():
            kept.setdefault(service, []).append((start, latency, values))
    # Services whose kept starts are alike (most: the SLOs of one kind) choose alike: the
    # choice (which kept sums to continue, which rows to add or take away) is made once per
    # kind of service, start and latency (the same order, the same ties).
    kind_of: dict[str, int] = {}
    kinds: dict[tuple, int] = {}
    for service, choices in kept.items():
        kind = tuple((old_start, old_latency) for old_start, old_latency, _ in choices)
        kind_of[service] = kinds.setdefault(kind, len(kinds))
    choice_of: dict[tuple, tuple | None] = {}  # (kind, start, latency) → (index, parts)
    moved = _span(upto - mark.upto)
    afresh: dict[tuple, bool] = {}
    derived: dict[tuple, tuple[Vector, str, tuple]] = {}  # key → (kept sums, service, parts)
    intervals: set[tuple[datetime, datetime]] = set()
    latency_of: dict[tuple, bool] = {}
    as_kept: set[tuple] = set()  # kept as they are
    unknown = (None,)
    for key, latency in needed.items():
        service, start = key
        if same_upto and key in exact and (exact[key][0] or not latency):
            latency_of[key], values = exact[key]
            derived[key] = (values, service, ())
            as_kept.add(key)
            continue
        kind = kind_of.get(service)
        choice = choice_of.get((kind, start, latency), unknown)
        if choice is unknown:
            index, best_cost = None, _span(upto - start)  # summing the range afresh
            for i, (old_start, old_latency, _) in enumerate(kept.get(service, ())):
                cost = _span(start - old_start) + moved
                # (a tie with summing afresh goes to the kept sums: their rows are read in
                # the one pass over what slid, summing afresh is one more pass)
                if (old_latency or not latency) and (
                    cost < best_cost or (index is None and cost == best_cost)
                ):
                    index, best_cost = i, cost
            choice = None
            if index is not None:
                old_start = kept[service][index][0]
                # [start, upto) = [old start, old upto) + [start, old start) + [old upto,
                # upto), where [a, b) with b < a counts as −[b, a)
                parts = tuple(
                    (1 if lower < upper else -1, (min(lower, upper), max(lower, upper)))
                    for lower, upper in ((start, old_start), (mark.upto, upto))
                    if lower != upper
                )
                intervals.update(interval for _, interval in parts)
                choice = (index, parts)
            choice_of[kind, start, latency] = choice
        if choice is None:
            afresh[key] = latency
            latency_of[key] = latency
            continue
        index, parts = choice
        _, latency_of[key], values = kept[service][index]
        derived[key] = (values, service, parts)
    sums = _sum_afresh(family, afresh, upto)
    services = sorted({service for _, service, parts in derived.values() if parts})
    seg_sums = _sum_segments(family, services, sorted(intervals))
    for key, (values, service, parts) in derived.items():
        for sign, interval in parts:
            values = _plus(values, seg_sums.get((service, interval), ZERO), sign)
        # the segments sum the histogram of every service: kept only where it is whole
        sums[key] = values if latency_of[key] else (*values[:5], *ZERO[5:])
    # The same three statements whatever changed (none when nothing did: they do nothing).
    if not same_upto:
        stamp = _keep(family, sums, latency_of, upto, gone=None)
    elif len(as_kept) != len(needed) or len(exact) != len(needed):
        changed = {key: sums[key] for key in needed if key not in as_kept}
        stamp = _keep(family, changed, latency_of, upto, gone=exact.keys() - needed.keys())
    else:
        stamp = _keep(family, {}, latency_of, upto, gone=set(), stamp=mark.refreshed_at)
    if stamp is not None:
        _REMEMBERED[family.mark] = Remembered(
            stamp,
            {key: (latency_of[key], sums[key]) for key in needed},
            {key: sums[key] for key in needed},
            frozenset(key for key in needed if latency_of[key]),
        )
    return sums


def ensure_kept_marks(now: datetime) -> None:
    """Creates the kept sums' watermark rows if missing (invalid: nothing kept), committed
    before the evaluation's transaction locks them: a refresh marks a row only if it sees it
    (noc.timeseries.rollups.mark_dependents_dirty), and a row the evaluation's own transaction
    inserted is invisible to others until it commits, after the rows it summed may have been
    rewritten."""
    from noc.models import RollupWatermark

    for family in (HOURS, MINUTES):
        RollupWatermark.objects.get_or_create(
            name=family.mark, defaults={"upto": now, "dirty_since": EPOCH}
        )


def _kept_mark(family: Family, upto: datetime):
    """The kept sums' watermark row, locked; created invalid (nothing kept yet) before any
    read, so that a refresh committing meanwhile marks it."""
    from noc.models import RollupWatermark

    RollupWatermark.objects.get_or_create(
        name=family.mark, defaults={"upto": upto, "dirty_since": EPOCH}
    )
    return RollupWatermark.objects.select_for_update().get(name=family.mark)


def _copy_sql(family: Family) -> str:
    return (
        f"COPY {family.table} (service_id, start, latency, {', '.join(KEPT)}) "
        "FROM STDIN (FORMAT BINARY)"
    )


COPY_TYPES = ("varchar", "timestamptz", "bool", *["int8"] * len(KEPT))


def _keep(
    family: Family,
    rows: dict[tuple, Vector],
    latency_of: dict[tuple, bool],
    upto: datetime,
    *,
    gone: set | None,
    stamp: datetime | None = None,
) -> datetime | None:
    """Keep these sums: instead of all kept ones (`gone` None), or besides them without those
    in `gone` (the same `upto`); say where they end, valid, and stamp them (a new stamp unless
    one is given: the kept sums did not change). Returns the stamp.

    The same three statements whatever changed: a DELETE (of all, or of the keys gone or
    written again), a binary COPY of the rows (none in a steady minute), the mark's UPDATE.
    When an hour or a block slides every kept sum is written again (70,000 rows at 10,000
    SLOs): the COPY took a third of the time and half the server CPU of an INSERT … ON
    CONFLICT from packed arrays."""
    if stamp is None and (rows or gone is None or gone):
        stamp = datetime.now(UTC)
    with connection.cursor() as cursor:
        if gone is None:
            cursor.execute(f"DELETE FROM {family.table}")
        else:
            deleted = [*gone, *rows]
            execute(
                cursor,
                f"DELETE FROM {family.table} k USING unnest(@varchar@, @timestamptz@) "
                "AS g(service_id, start) WHERE g.service_id = k.service_id AND g.start = k.start",
                [[s for s, _ in deleted], [start for _, start in deleted]],
            )
        with cursor.cursor.copy(_copy_sql(family)) as copy:
            copy.set_types(COPY_TYPES)
            for key, values in rows.items():
                copy.write_row((*key, latency_of[key], *values))
        cursor.execute(
            "UPDATE noc_rollupwatermark SET upto = %s, dirty_since = NULL, refreshed_at = %s "
            "WHERE name = %s",
            [upto, stamp, family.mark],
        )
    return stamp
