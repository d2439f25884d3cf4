"""SLO evaluation: every enabled SLO at once over 30 days of check history.

    .venv/bin/python bench/slos.py [--services 1000] [--days 30] [--runs 5] [--all-minutes]

Creates a throwaway database `noc_bench_slos` on the PostgreSQL server the project uses (the
embedded one unless DATABASE_URL is set), migrates it, and then:

- creates `--services` HTTP services (disabled: no dispatcher runs) and one SLO on each: mostly
  availability 30 d at 99.9 %, some latency 7 d (≤ 250 ms), error rate 24 h, calendar month,
  and availability timeslices 30 d;
- generates what an evaluation reads: the last hours of one-minute history straight into the
  per-minute rollup (services_checkrollup), in time order as the refresh writes it (one check
  a minute, mostly up, a few down or degraded minutes, regular outages on some services, a few
  minutes without data, response times with per-service means and a tail), the hourly rollup
  of those hours with the project's own rollup SELECT, and the hourly rollup of the rest of
  `--days` straight from the same model with `COPY` (minute rows older than 6 hours are never
  read: 30 days of them for 10,000 services would be 93 GB). `--all-minutes` generates every
  minute of `--days` instead and builds the whole hourly rollup from it, as before. Then the
  daily rollup of the hourly one and the 10-minute rollup of the per-minute one by the
  project's own refresh (what a cold evaluation reads for whole days and 10-minute blocks),
  and VACUUM ANALYZE (generation time is reported apart from the figures);
- times `slos.actions.slos_evaluate(now=…)` (`--runs` runs after a warm-up, every run
  writing its minute's history rows): steady (consecutive minutes of one hour, the kept sums
  of completed hours as they are), the first minute of an hour after the last of the previous
  one (every kept hourly range slides by an hour), a minute at hh:x5 after the one before
  (the kept minute blocks slide by 10 minutes, as 6 times an hour), an hourly figure of
  53 steady minutes, 6 block slides and one hour slide, and cold (nothing kept); the SLI
  read alone, from the kept sums and with nothing kept (`slos.sli.read`); and
  the ceiling: one plain scan of the rollup rows an evaluation needs (hourly rows of the last
  30 days + minute rows of the last 6 hours), alternately, so load on the machine hits all
  alike;
- prints EXPLAIN (ANALYZE, BUFFERS) summaries of both SLI queries (plan shape, index used,
  rows read) and the query count and phase times of one evaluation.

It prints the figures and drops the database. The goal: all 1,000 SLOs in under 5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.checks import base_urls, private_redis  # noqa: E402 - the project root first
from bench.common import (  # noqa: E402
    percentile,
    ratio,
    server_version,
    throwaway_database,
    wait_for_quiet_machine,
)

DATABASE_NAME = "noc_bench_slos"
BYTES_PER_MINUTE_ROW = 220  # heap + both indexes: 9.3 GB for 43.2 M rows with the hourly rows
BYTES_PER_HOURLY_ROW = 300
RECENT_HOURS = 8  # of minute rows: the 6 h evaluation reads, the current hour, and a margin
GOAL_SECONDS = 5.0

# The SLO mix, by position: (share of all SLOs, fields). Cumulative shares pick the kind.
SLO_MIX: tuple[tuple[float, dict], ...] = (
    (0.70, {"sli_type": "availability", "window": "30d", "target": "99.9"}),
    (0.12, {"sli_type": "latency", "window": "7d", "target": "99", "latency_threshold_ms": 250}),
    (0.10, {"sli_type": "error_rate", "window": "24h", "target": "99.5"}),
    (0.04, {"sli_type": "availability", "window": "month", "target": "99.9"}),
    (
        0.04,
        {
            "sli_type": "availability",
            "window": "30d",
            "target": "99.5",
            "budgeting_method": "timeslices",
        },
    ),
)


@dataclass(frozen=True)
class Options:
    services: int
    days: int
    runs: int
    all_minutes: bool
    wait_idle: float


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000, help="services, one SLO each")
    parser.add_argument("--days", type=int, default=30, help="days of one-minute history")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each measurement")
    parser.add_argument(
        "--all-minutes", action="store_true",
        help="generate every minute of --days (not only the recent hours) and roll them up",
    )  # fmt: skip
    parser.add_argument(
        "--wait-idle", type=float, default=600, metavar="SECONDS",
        help="wait up to this long for a mostly idle machine before measuring",
    )  # fmt: skip
    args = parser.parse_args(argv)
    return Options(
        services=args.services, days=args.days, runs=args.runs, all_minutes=args.all_minutes,
        wait_idle=args.wait_idle,
    )  # fmt: skip


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the project and its database -------------------------------------------------------------


def setup_project(database_url: str, redis_url: str) -> None:
    """Point Django at the throwaway database (before noc.settings loads), migrate it."""
    # DEBUG off, as in production: Django would otherwise log every query it runs.
    os.environ.update(
        DATABASE_URL=database_url, REDIS_URL=redis_url, NOC_EMBEDDED="off", DEBUG="false"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "noc.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from noc.cachekeys import delete_prefixed
    from noc.timeseries import backend

    call_command("migrate", verbosity=0)
    delete_prefixed()  # this installation's keys, not the whole database
    if backend.table_backend_of(connection, "services_checkrollup") != backend.NATIVE:
        raise SystemExit("this bench writes the native rollup tables: use NOC_TIMESERIES=native")


def close_database() -> None:
    from django.db import connections

    connections.close_all()


def check_disk(options: Options) -> str:
    """Refuse when the server's data directory (if local) has too little room for the history."""
    from django.db import connection

    minutes = options.days * 1440 if options.all_minutes else RECENT_HOURS * 60
    needed = options.services * (
        minutes * BYTES_PER_MINUTE_ROW + options.days * 24 * BYTES_PER_HOURLY_ROW
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        data_directory = cursor.fetchone()[0]
    if not os.path.isdir(data_directory):
        return f"needs ≈ {needed / 1e9:.1f} GB on the server (its data directory is not local)"
    free = shutil.disk_usage(data_directory).free
    if needed > 0.8 * free:
        raise SystemExit(
            f"{options.services} services × {options.days} days need ≈ {needed / 1e9:.1f} GB, "
            f"{free / 1e9:.1f} GB free under {data_directory}: lower --days or --services"
        )
    return f"needs ≈ {needed / 1e9:.1f} GB, {free / 1e9:.0f} GB free"


# --- services and SLOs --------------------------------------------------------------------------


def service_id(i: int) -> str:
    return f"bench-{i:06d}"


def slo_fields(i: int, count: int) -> dict:
    """The i-th SLO's kind: the mix's shares, spread over the services by a permutation."""
    position = (i * 7919) % count / count  # a permutation of 0..count-1, scaled to [0, 1)
    cumulative = 0.0
    for share, fields in SLO_MIX:
        cumulative += share
        if position < cumulative:
            return fields
    return SLO_MIX[0][1]


def create_services_and_slos(count: int) -> None:
    from decimal import Decimal

    from services.models import Service
    from slos.models import SLO

    Service.objects.bulk_create(
        [
            Service(
                id=service_id(i), name=f"bench {i}", kind="http", url="http://127.0.0.1:9/",
                interval_seconds=60, enabled=False,
            )
            for i in range(1, count + 1)
        ],
        batch_size=2000,
    )  # fmt: skip
    slos = []
    for i in range(1, count + 1):
        fields = dict(slo_fields(i, count))
        fields["target"] = Decimal(fields["target"])
        slos.append(
            SLO(id=f"slo-{i:06d}", name=f"bench SLO {i}", service_id=service_id(i), **fields)
        )
    SLO.objects.bulk_create(slos, batch_size=2000)


# --- history, straight into the rollup tables -------------------------------------------------

# One row per service per minute, in time order (the LATERAL join runs the services for each
# minute, as the per-minute refresh writes them). Per service i: a mean response time between
# 30 and 280 ms with an exponential tail; every 20th service has a 30-minute outage every 3 days,
# the next one 10 minutes every 10 days; everywhere 0.05 % minutes without data, 0.03 % down
# and 0.2 % degraded (1–5 s) minutes.
MINUTES_SQL = """
WITH svc AS MATERIALIZED (
    SELECT 'bench-' || lpad(i::text, 6, '0') AS service_id,
           30 + (i * 37) %% 250 AS mean_ms,
           (i * 7919) %% 100000 AS phase,
           CASE i %% 20 WHEN 0 THEN 4320 WHEN 1 THEN 14400 ELSE 1 END AS outage_every,
           CASE i %% 20 WHEN 0 THEN 30 WHEN 1 THEN 10 ELSE 0 END AS outage_minutes
    FROM generate_series(1, %(services)s) AS i
),
checks AS (
    SELECT m.bucket, c.service_id,
           c.in_outage OR (c.u >= 0.0005 AND c.u < 0.0008) AS down,
           NOT c.in_outage AND c.u >= 0.0008 AND c.u < 0.0028 AS degraded,
           CASE
               WHEN c.in_outage OR c.u < 0.0008 THEN NULL
               WHEN c.u < 0.0028 THEN 1000 + 4000 * c.v
               ELSE c.mean_ms * (0.5 - 0.5 * ln(1 - c.v))
           END AS rt
    FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 minute',
                         interval '1 minute') AS m(bucket)
    CROSS JOIN LATERAL (
        SELECT s.service_id, s.mean_ms, random() AS u, random() AS v,
               ((extract(epoch FROM m.bucket)::bigint / 60 + s.phase) %% s.outage_every)
                   < s.outage_minutes AS in_outage
        FROM svc s
    ) c
    WHERE c.in_outage OR c.u >= 0.0005
)
INSERT INTO services_checkrollup (bucket, service_id, n_up, n_degraded, n_down, n_maintenance,
                                  rt_count, rt_sum, rt_min, rt_max, {le_columns})
SELECT bucket, service_id, (NOT down AND NOT degraded)::int, degraded::int, down::int, 0,
       (rt IS NOT NULL)::int, rt, rt, rt, {le_values}
FROM checks
"""


def minutes_sql() -> str:
    from services.choices import LATENCY_BUCKETS_MS

    return MINUTES_SQL.format(
        le_columns=", ".join(f"le_{ms}" for ms in LATENCY_BUCKETS_MS),
        le_values=", ".join(f"coalesce((rt <= {ms})::int, 0)" for ms in LATENCY_BUCKETS_MS),
    )


def hourly_sql() -> str:
    """The project's hourly rollup SELECT (services/timeseries.py) as a plain INSERT, in time
    order as the hourly refresh writes it."""
    from noc.timeseries.rollups import date_bin
    from services.timeseries import CHECK_ROLLUP_HOURLY as rollup

    columns = ["bucket", *rollup.key_columns, *re.findall(r"\bAS (\w+)", rollup.select)]
    select = rollup.query(
        date_bin(rollup), f"WHERE {rollup.time_column} >= %s AND {rollup.time_column} < %s"
    )
    return f"INSERT INTO {rollup.name} ({', '.join(columns)}) {select} ORDER BY 1, 2"


def days_between(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    moment = start
    while moment < end:
        upper = min(moment + timedelta(days=1), end)
        yield moment, upper
        moment = upper


def generate_history(
    services: int, start: datetime, end: datetime, *, all_minutes: bool
) -> dict[str, float]:
    """Hourly rows for the whole hours of [start, end) and minute rows for its last
    RECENT_HOURS (or all of it); seconds per phase."""
    from django.db import connection

    from noc.models import RollupWatermark
    from noc.timeseries import partitions
    from services.timeseries import ROLLUP_HOURLY_TABLE, ROLLUP_TABLE

    hour_end = end.replace(minute=0, second=0, microsecond=0)
    minutes_from = start if all_minutes else hour_end - timedelta(hours=RECENT_HOURS)
    partitions.ensure(ROLLUP_TABLE, minutes_from, end + timedelta(minutes=1))
    partitions.ensure(ROLLUP_HOURLY_TABLE, start, end)
    seconds: dict[str, float] = {}
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        began = time.perf_counter()
        sql = minutes_sql()
        for day, (lower, upper) in enumerate(days_between(minutes_from, end), 1):
            cursor.execute(sql, {"services": services, "start": lower, "end": upper})
            log(f"  minutes: day {day}: {cursor.rowcount:,} rows, {_elapsed(began)}")
        seconds["minute rows"] = time.perf_counter() - began
        began = time.perf_counter()
        hour_start = start.replace(minute=0, second=0, microsecond=0)  # its first hour partial
        if not all_minutes:
            copy_hourly_rows(cursor, services, hour_start, minutes_from)
            seconds["hourly rows (COPY)"] = time.perf_counter() - began
            began = time.perf_counter()
            hour_start = minutes_from
        sql = hourly_sql()
        for day, (lower, upper) in enumerate(days_between(hour_start, hour_end), 1):
            cursor.execute(sql, [lower, upper])
            log(f"  hours from minutes: day {day}: {cursor.rowcount:,} rows, {_elapsed(began)}")
        seconds["hourly rows (rolled up)"] = time.perf_counter() - began
        for name, upto in (
            ("services_checkrollup", end),
            ("services_checkrollup_hourly", hour_end),
        ):
            RollupWatermark.objects.update_or_create(name=name, defaults={"upto": upto})
        began = time.perf_counter()
        coarse_rollups(end)
        seconds["daily and 10-minute rows (rolled up)"] = time.perf_counter() - began
        began = time.perf_counter()
        log("  VACUUM ANALYZE …")
        cursor.execute(f"VACUUM ANALYZE {', '.join(ROLLUP_TABLES)}")
        cursor.execute("RESET synchronous_commit")
        seconds["vacuum analyze"] = time.perf_counter() - began
    return seconds


ROLLUP_TABLES = (
    "services_checkrollup",
    "services_checkrollup_hourly",
    "services_checkrollup_daily",
    "services_checkrollup_10min",
)


COARSE_ROLLUPS = {"services_checkrollup_daily": "days", "services_checkrollup_10min": "10 min"}


def coarse_rollups(now: datetime) -> None:
    """The coarser rollups a cold evaluation reads (daily of the hourly one, 10-minute of the
    per-minute one), by the project's own refresh, run after run as the beat runs it (each
    computes at most its catch_up) until every settled bucket is in."""
    from noc.models import RollupWatermark
    from noc.timeseries.rollups import ROLLUPS, refresh

    began = time.perf_counter()
    for name, what in COARSE_ROLLUPS.items():
        before = None
        while True:
            written = refresh(ROLLUPS[name], now=now)
            upto = RollupWatermark.objects.get(name=name).upto
            log(f"  {what}: up to {upto:%Y-%m-%d %H:%M}: {written:,} rows, {_elapsed(began)}")
            if upto == before:
                break
            before = upto


@dataclass(frozen=True)
class ServiceModel:
    """Service i of MINUTES_SQL, summed per hour: its mean response time and outages."""

    id: str
    mean_ms: float
    phase: int
    outage_every: int  # minutes
    outage_minutes: int

    @classmethod
    def of(cls, i: int) -> ServiceModel:
        every, minutes = {0: (4320, 30), 1: (14400, 10)}.get(i % 20, (1, 0))
        return cls(service_id(i), 30 + (i * 37) % 250, (i * 7919) % 100000, every, minutes)

    def outage_in_hour(self, epoch_minute: int) -> int:
        """Minutes of [epoch_minute, +60) inside an outage (MINUTES_SQL's in_outage)."""
        if not self.outage_minutes:
            return 0
        offset = (epoch_minute + self.phase) % self.outage_every
        span = range(offset, offset + 60)
        return sum(
            max(0, min(span.stop, begin + self.outage_minutes) - max(span.start, begin))
            for begin in (0, self.outage_every)
        )

    def share_at_most(self, ms: int) -> float:
        """P(rt ≤ ms) for rt = mean × (0.5 − 0.5 ln(1 − v)), v uniform."""
        return 0.0 if ms < self.mean_ms / 2 else 1 - math.exp(-(2 * ms / self.mean_ms - 1))

    def hour_row(self, *, no_data: int, down: int, degraded: int) -> str:
        """The hourly rollup columns after (bucket, service_id), as COPY text."""
        from services.choices import LATENCY_BUCKETS_MS

        total = 60 - no_data
        up = max(total - down - degraded, 0)
        le = [
            round(up * self.share_at_most(ms))
            + round(degraded * min(max((ms - 1000) / 4000, 0), 1))
            for ms in LATENCY_BUCKETS_MS
        ]
        rt_sum = up * self.mean_ms + degraded * 3000
        rt_max = 5000.0 if degraded else self.mean_ms * 4
        values = [up, degraded, down, 0, up + degraded, rt_sum, self.mean_ms / 2, rt_max, *le]
        return "\t".join(map(str, [*values, total, total - down]))


HOURLY_COPY_COLUMNS = (
    "n_up, n_degraded, n_down, n_maintenance, rt_count, rt_sum, rt_min, rt_max, "
    "le_50, le_100, le_250, le_500, le_1000, le_2500, le_5000, le_10000, m_total, m_good_avail"
)


def copy_hourly_rows(cursor, services: int, start: datetime, end: datetime) -> None:
    """The hourly rollup of [start, end) from ServiceModel, day by day with COPY. Rare
    minutes (no data 0.05 %, down 0.03 %, degraded 0.2 %) are drawn per hour; a service's
    ordinary hour is one cached line."""
    import random

    models = [ServiceModel.of(i) for i in range(1, services + 1)]
    ordinary = {m.id: m.hour_row(no_data=0, down=0, degraded=0) for m in models}
    began = time.perf_counter()
    rng = random.Random(12)
    for day, (lower, upper) in enumerate(days_between(start, end), 1):
        lines = []
        hour = lower
        while hour < upper:
            stamp = hour.isoformat()
            epoch_minute = int(hour.timestamp()) // 60
            for m in models:
                outage = m.outage_in_hour(epoch_minute)
                no_data = rng.random() < 0.03
                down = rng.random() < 0.018
                degraded = rng.random() < 0.113
                if outage or no_data or down or degraded:
                    row = m.hour_row(
                        no_data=int(no_data), down=outage + down, degraded=int(degraded)
                    )
                else:
                    row = ordinary[m.id]
                lines.append(f"{stamp}\t{m.id}\t{row}\n")
            hour += timedelta(hours=1)
        copy = (
            "COPY services_checkrollup_hourly (bucket, service_id, "
            f"{HOURLY_COPY_COLUMNS}) FROM STDIN"
        )
        with cursor.cursor.copy(copy) as writer:
            writer.write("".join(lines))
        log(f"  hours by COPY: day {day}: {len(lines):,} rows, {_elapsed(began)}")


def _elapsed(began: float) -> str:
    return f"{time.perf_counter() - began:,.0f} s"


def table_rows() -> dict[str, int]:
    from django.db import connection

    rows = {}
    with connection.cursor() as cursor:
        for table in ROLLUP_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            rows[table] = cursor.fetchone()[0]
            cursor.execute(
                "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
                "WHERE inhparent = %s::regclass",
                [table],
            )
            rows[f"{table} bytes"] = int(cursor.fetchone()[0])
    return rows


# --- what is measured ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def targets_at(now: datetime) -> list:
    """What slos_evaluate reads for every enabled SLO (the same construction); cached, so the
    timed reads are the SLI queries and nothing else."""
    from slos.actions import sli_targets
    from slos.models import SLO

    return sli_targets(list(SLO.objects.filter(enabled=True)), now)


CEILING_SQL = (
    "SELECT count(*), sum(n_up) FROM services_checkrollup_hourly "
    "WHERE bucket >= %(now)s - interval '30 days' AND bucket < %(hour)s",
    "SELECT count(*), sum(n_up) FROM services_checkrollup "
    "WHERE bucket >= %(now)s - interval '6 hours' AND bucket < %(now)s",
)


def ceiling(now: datetime) -> tuple[int, int]:
    """One plain scan of the rollup rows an evaluation needs; returns (hourly, minute) rows."""
    from django.db import connection

    params = {"now": now, "hour": now.replace(minute=0, second=0, microsecond=0)}
    counts = []
    with connection.cursor() as cursor:
        for sql in CEILING_SQL:
            cursor.execute(sql, params)
            counts.append(cursor.fetchone()[0])
    return counts[0], counts[1]


def evaluate(now: datetime) -> int:
    from slos.actions import slos_evaluate

    return slos_evaluate(now=now)


MINUTE = timedelta(minutes=1)


def unwritten(now: datetime) -> None:
    """Without the history rows of `now`: its evaluation writes them again."""
    from slos.models import SLOStatus

    SLOStatus.objects.filter(time=now).delete()


def after_the_minute_before(now: datetime) -> None:
    """The kept sums as the evaluation of the minute before `now` leaves them."""
    evaluate(now - MINUTE)
    unwritten(now)


def after_forgetting(now: datetime) -> None:
    forget_kept_sums()
    unwritten(now)


def forget_kept_sums(now: datetime | None = None) -> None:
    """Drop what evaluations keep between minutes: the next one sums every range afresh."""
    from django.db import connection

    from slos import sli

    with connection.cursor() as cursor:
        for family in (sli.HOURS, sli.MINUTES):
            cursor.execute(f"DELETE FROM {family.table}")
            cursor.execute("DELETE FROM noc_rollupwatermark WHERE name = %s", [family.mark])
    sli._REMEMBERED.clear()


def read(now: datetime) -> None:
    """The SLI read with nothing kept (as a page reading SLOs does)."""
    from slos import sli

    sli.read(targets_at(now), now)


def read_kept(now: datetime) -> None:
    """The SLI read as the evaluation at `now` (just run) does it, from the kept sums."""
    from django.db import transaction

    from slos import sli

    with transaction.atomic():
        sli.read(targets_at(now), now, keep=True)


AFRESH: dict[str, list[float]] = {}  # kept-sums family → seconds of its afresh sums, cold


@contextlib.contextmanager
def timing_afresh_sums() -> Iterator[None]:
    """Times slos.sli._sum_afresh per family of kept sums while inside (the cold rounds): what
    summing every kept range from the rollups costs, apart from the rest of the minute."""
    from slos import sli

    real = sli._sum_afresh

    def timed(family, keys, upto):
        began = time.perf_counter()
        try:
            return real(family, keys, upto)
        finally:
            if keys:
                AFRESH.setdefault(family.table, []).append(time.perf_counter() - began)

    sli._sum_afresh = timed
    try:
        yield
    finally:
        sli._sum_afresh = real


def timed_rounds(
    functions: dict[str, tuple[Callable[[datetime], object], list[datetime]]],
) -> dict[str, list[float]]:
    """Each function at each of its moments, round by round (one call of each per round), so
    load on the machine hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in functions}
    rounds = max(len(moments) for _, moments in functions.values())
    for k in range(rounds):
        for name, (function, moments) in functions.items():
            if k < len(moments):
                began = time.perf_counter()
                function(moments[k])
                samples[name].append(time.perf_counter() - began)
                log(f"  {moments[k]:%H:%M} {name}: {samples[name][-1]:.3f} s")
    return samples


# --- EXPLAIN ------------------------------------------------------------------------------------


@dataclass
class Plan:
    execution_ms: float
    planning_ms: float
    shared_hit: int
    shared_read: int
    temp_blocks: int
    top: str
    scans: dict[str, list[float]]  # "Index Scan using X on T" → [partitions, rows, loops]
    subplans_removed: int


_PARTITION = re.compile(r"_p\d{8,10}")


def explain(sql: str, params: dict) -> Plan:
    import json

    from django.db import connection

    from slos import sli

    with connection.cursor() as cursor:
        sli.execute(cursor, f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) {sql}", params)
        document = cursor.fetchone()[0]
    document = json.loads(document) if isinstance(document, str) else document
    root = document[0]
    plan = Plan(
        execution_ms=root["Execution Time"],
        planning_ms=root["Planning Time"],
        shared_hit=root["Plan"].get("Shared Hit Blocks", 0),
        shared_read=root["Plan"].get("Shared Read Blocks", 0),
        temp_blocks=root["Plan"].get("Temp Read Blocks", 0)
        + root["Plan"].get("Temp Written Blocks", 0),
        top=" → ".join(_spine(root["Plan"])),
        scans={},
        subplans_removed=0,
    )
    _collect(root["Plan"], plan)
    return plan


def _spine(node: dict) -> list[str]:
    """Node types from the top down to the first scan or fork with several inputs."""
    names = [node["Node Type"] + (f" ({node['Strategy']})" if node.get("Strategy") else "")]
    children = node.get("Plans", [])
    if len(children) == 1:
        names += _spine(children[0])
    elif children:
        names.append("[" + ", ".join(c["Node Type"] for c in children) + "]")
    return names


def _collect(node: dict, plan: Plan) -> None:
    plan.subplans_removed += node.get("Subplans Removed", 0)
    if "Relation Name" in node and node["Relation Name"] != "t":
        using = f" using {node['Index Name']}" if node.get("Index Name") else ""
        key = _PARTITION.sub("", f"{node['Node Type']}{using} on {node['Relation Name']}")
        entry = plan.scans.setdefault(key, [0, 0.0, 0.0])
        loops = node.get("Actual Loops", 0)
        entry[0] += 1
        entry[1] += node.get("Actual Rows", 0) * loops
        entry[2] = max(entry[2], loops)
    for child in node.get("Plans", []):
        _collect(child, plan)


def plan_lines(label: str, plan: Plan) -> list[str]:
    lines = [
        f"  {label}: execution {plan.execution_ms:,.1f} ms (planning {plan.planning_ms:,.1f} ms), "
        f"buffers hit {plan.shared_hit:,} read {plan.shared_read:,} temp {plan.temp_blocks:,}",
        f"    plan: {plan.top}",
    ]
    for key, (partitions, rows, loops) in plan.scans.items():
        lines.append(
            f"    {key}: {partitions:.0f} partitions, {rows:,.0f} rows read, "
            f"{loops:,.0f} loops per partition"
        )
    if plan.subplans_removed:
        lines.append(f"    partitions pruned (Subplans Removed): {plan.subplans_removed:,}")
    return lines


def plans_at(now: datetime) -> dict[str, Plan]:
    from slos import sli

    queries = sli.plan(targets_at(now), now)
    hours, minutes = now.replace(minute=0) - sli.SETTLE, sli._block(now - sli.MINUTE_SETTLE)
    kept = sli.plan(targets_at(now), now, hours, minutes)
    return {
        "minute query (slos.sli)": explain(queries.minute.sql, queries.minute.params),
        "minute latency query": explain(queries.minute_latency.sql, queries.minute_latency.params),
        "hour query (slos.sli)": explain(queries.hour.sql, queries.hour.params),
        "hour latency query": explain(queries.hour_latency.sql, queries.hour_latency.params),
        "minute query, sums kept": explain(kept.minute.sql, kept.minute.params),
        "minute latency query, sums kept": explain(
            kept.minute_latency.sql, kept.minute_latency.params
        ),
        "hour query, sums kept (the last 3 h)": explain(kept.hour.sql, kept.hour.params),
    }


# --- one evaluation, taken apart -----------------------------------------------------------------


@contextlib.contextmanager
def counting_queries() -> Iterator[list[int]]:
    """Counts the queries run inside the block (whatever DEBUG says): read [0] afterwards."""
    from django.db import connection

    count = [0]

    def count_one(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count_one):
        yield count


def phases_at(now: datetime) -> dict[str, float]:
    """Query count of slos_evaluate at a minute already evaluated (alerts steady, sums kept),
    and its steps timed one by one, as it runs them (without that minute's history rows, so
    that they are written again, not skipped)."""
    from slos import actions

    with counting_queries() as queries:
        actions.slos_evaluate(now=now)
    with actions._without_cycle_collection():  # as slos_evaluate runs
        return {"queries": queries[0], **_steps_at(now)}


def _steps_at(now: datetime) -> dict[str, float]:
    from django.db import transaction

    from slos import actions, sli
    from slos.models import SLO, SLOStatus

    figures: dict[str, float] = {}
    state: dict[str, object] = {}

    def step(name: str, function: Callable[[], object]) -> None:
        began = time.perf_counter()
        state[name] = function()
        figures[name] = time.perf_counter() - began

    with transaction.atomic():
        step("load SLOs", lambda: list(SLO.objects.filter(enabled=True).only(*actions.EVALUATED)))
        slos = state["load SLOs"]
        step("targets", lambda: actions.sli_targets(slos, now))
        step("read", lambda: sli.read(state["targets"], now, keep=True))
        readings = state["read"]
        step("evaluate (Python)", lambda: [actions.evaluate(x, readings[x.id], now) for x in slos])
        evaluations = state["evaluate (Python)"]
        SLOStatus.objects.filter(time=now).delete()  # (not timed)
        step("history insert", lambda: actions._write_history(evaluations, now))
        step("cache update", lambda: actions._write_cache(evaluations, now))

    step("alerts", lambda: actions._update_alerts(evaluations, now))
    return figures


def outcome_summary() -> dict[str, int]:
    from slos.models import SLO, SLOAlert

    return {
        "compliant": SLO.objects.filter(compliant=True).count(),
        "not compliant": SLO.objects.filter(compliant=False).count(),
        "alerts firing": SLOAlert.objects.filter(state="firing").count(),
    }


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Figures:
    options: Options
    loaded: Loaded
    evaluated: int
    samples: dict[str, list[float]]
    ceiling_rows: tuple[int, int]
    plans: dict[str, Plan]
    phases: dict[str, float]
    outcome: dict[str, int]
    load: tuple[float, float, float]
    busy: float


@dataclass(frozen=True)
class Loaded:
    """What the setup left: sizes, generation times and the history's end."""

    disk: str
    generation: dict[str, float]
    rows: dict[str, int]
    end: datetime


def load(options: Options) -> Loaded:
    disk = check_disk(options)
    log(f"creating {options.services:,} services and SLOs; history: {disk}")
    create_services_and_slos(options.services)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    generation = generate_history(
        options.services, end - timedelta(days=options.days), end, all_minutes=options.all_minutes
    )
    return Loaded(disk, generation, table_rows(), end)


def run(options: Options) -> Figures:
    return measure(options, load(options))


def steady_minutes(end: datetime, runs: int) -> list[datetime]:
    """`runs` + 1 consecutive minutes inside one hour, the last ones before `end` (a warm-up
    and the runs): evaluations that keep their hour's sums."""
    last = end - timedelta(minutes=1)
    if last.minute < runs:
        last = last.replace(minute=0) - timedelta(minutes=1)  # the previous hour's last minutes
    return [last - timedelta(minutes=runs - k) for k in range(runs + 1)]


def measure(options: Options, loaded: Loaded) -> Figures:
    # Every timed evaluation writes its minute's history (rows of a minute evaluated before
    # are deleted first, untimed). Steady: consecutive minutes of one hour, as the beat runs
    # them (the kept sums as they are); hour slides: the first minute of an hour after the
    # last of the one before (every kept hourly range slides by an hour), each run prepared
    # by evaluating that last minute again (untimed); block slides: hh:x5 after hh:x4 (the
    # kept minute blocks slide by 10 minutes); cold: nothing kept (the first evaluation after
    # a deploy, or after late results for a kept hour).
    runs = options.runs
    moments = steady_minutes(loaded.end, runs)
    hour = moments[-1].replace(minute=0)
    block = moments[-1] - timedelta(minutes=(moments[-1].minute - 5) % 10)
    for moment in {*moments, hour, hour - MINUTE, block, block - MINUTE}:
        targets_at(moment)
    log(f"waiting for a quiet machine (up to {options.wait_idle:g} s) …")
    busy = wait_for_quiet_machine(max_busy=0.25, timeout=options.wait_idle)
    load_average = os.getloadavg()
    log("warm-up …")
    evaluated = evaluate(moments[0])
    read(moments[0]), ceiling(moments[0])
    samples = timed_rounds(
        {
            "evaluate": (evaluate, moments[1:]),
            "read (kept)": (read_kept, moments[1:]),
            "read": (read, moments[1:]),
            "ceiling": (ceiling, moments[1:]),
        }
    )
    for case, at, prepare in (
        ("hour slides", hour, after_the_minute_before),
        ("block slides", block, after_the_minute_before),
        ("cold", moments[-1], after_forgetting),
    ):
        log(f"{case} …")
        timing = timing_afresh_sums() if case == "cold" else contextlib.nullcontext()
        with timing:
            rounds = timed_rounds(
                {
                    "prepare": (prepare, [at] * runs),
                    "evaluate": (evaluate, [at] * runs),
                    "ceiling": (ceiling, [at] * runs),
                }
            )
        for name, values in rounds.items():
            samples[f"{name} ({case})"] = values
    evaluate(moments[-1])  # keeps the sums again, for the phases below
    last = moments[-1]
    log("EXPLAIN …")
    plans = plans_at(last)
    log("phases …")
    return Figures(
        options=options, loaded=loaded, evaluated=evaluated, samples=samples,
        ceiling_rows=ceiling(last), plans=plans,
        phases=phases_at(last), outcome=outcome_summary(), load=load_average, busy=busy,
    )  # fmt: skip


def report(figures: Figures, postgres: str) -> None:
    o, s, outcome = figures.options, figures.samples, figures.outcome
    rows, generated = figures.loaded.rows, figures.loaded.generation
    minute_rows = rows["services_checkrollup"]
    hourly_rows = rows["services_checkrollup_hourly"]
    size = sum(rows[f"{table} bytes"] for table in ROLLUP_TABLES)
    generation = ", ".join(f"{name} {sec:,.0f} s" for name, sec in generated.items())
    hourly_read, minute_read = figures.ceiling_rows
    hourly = (
        53 * _p50(s["evaluate"])
        + 6 * _p50(s["evaluate (block slides)"])
        + _p50(s["evaluate (hour slides)"])
    ) / 60
    lines = [
        f"machine: {os.cpu_count()} cores (nproc), PostgreSQL {postgres}; before measuring: "
        f"{figures.busy:.0%} busy, load average {figures.load[0]:.1f}; at the end "
        f"{os.getloadavg()[0]:.1f}",
        f"data: {o.services:,} services × {o.days} days of history"
        f"{'' if o.all_minutes else f' (minute rows for the last {RECENT_HOURS} h only)'}: "
        f"{minute_rows:,} minute rows, {hourly_rows:,} hourly rows, "
        f"{rows['services_checkrollup_daily']:,} daily rows, "
        f"{rows['services_checkrollup_10min']:,} 10-minute rows, {size / 1e9:.2f} GB",
        f"  generated in {sum(generated.values()):,.0f} s ({generation})",
        f"SLOs evaluated: {figures.evaluated:,} ({outcome['compliant']} compliant, "
        f"{outcome['not compliant']} not, {outcome['alerts firing']} alerts firing)",
        f"ceiling (plain scan):     {_spread(s['ceiling'])}; {hourly_read:,} hourly rows "
        f"(30 d) + {minute_read:,} minute rows (6 h)",
        f"slos_evaluate, steady:    {_spread(s['evaluate'])}   "
        f"ratio to the ceiling {_ratio(s['evaluate'], s['ceiling'])}",
        f"  SLI read, kept sums:    {_spread(s['read (kept)'])}   "
        f"ratio {_ratio(s['read (kept)'], s['ceiling'])}",
        f"  SLI read, nothing kept: {_spread(s['read'])}   ratio {_ratio(s['read'], s['ceiling'])}",
        f"slos_evaluate, hour slides: {_spread(s['evaluate (hour slides)'])}   "
        f"ratio {_ratio(s['evaluate (hour slides)'], s['ceiling (hour slides)'])} "
        f"(ceiling in its rounds p50 {_p50(s['ceiling (hour slides)']):.3f} s)",
        f"slos_evaluate, block slides: {_spread(s['evaluate (block slides)'])}   "
        f"ratio {_ratio(s['evaluate (block slides)'], s['ceiling (block slides)'])} "
        f"(ceiling in its rounds p50 {_p50(s['ceiling (block slides)']):.3f} s)",
        f"an hour (53 steady minutes, 6 block slides, 1 hour slide): {hourly:.3f} s a minute, "
        f"ratio {ratio(hourly, _p50(s['ceiling'])):.1f}",
        f"slos_evaluate, cold:      {_spread(s['evaluate (cold)'])}   "
        f"ratio {_ratio(s['evaluate (cold)'], s['ceiling (cold)'])} "
        f"(ceiling in its rounds p50 {_p50(s['ceiling (cold)']):.3f} s)",
        "  of which summing every kept range afresh: "
        + ", ".join(
            f"{FAMILY_NAMES.get(table, table)} {_spread(values)}"
            for table, values in sorted(AFRESH.items())
        ),
        f"goal (all in < {GOAL_SECONDS:g} s): "
        f"{'met' if max(s['evaluate (cold)']) < GOAL_SECONDS else 'NOT met'}; "
        f"under 3× the ceiling (steady): "
        f"{'met' if ratio(_p50(s['evaluate']), _p50(s['ceiling'])) < 3 else 'NOT met'}",
        "EXPLAIN (ANALYZE, BUFFERS) of the SLI queries, at the last run's minute:",
    ]
    for label, plan in figures.plans.items():
        lines += plan_lines(label, plan)
    ph = dict(figures.phases)
    queries = ph.pop("queries")
    lines += [
        f"one steady evaluation taken apart: {queries:,.0f} queries; "
        + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in ph.items()),
    ]
    print("\n" + "\n".join(lines))


FAMILY_NAMES = {"slos_slisums": "hourly family", "slos_slisums_minute": "minute family"}


def _p50(samples: list[float]) -> float:
    return percentile(samples, 50)


def _ratio(samples: list[float], ceilings: list[float]) -> str:
    return f"{ratio(_p50(samples), _p50(ceilings)):,.1f}"


def _spread(samples: list[float]) -> str:
    return f"p50 {_p50(samples):,.3f} s, max {max(samples):,.3f} s (n={len(samples)})"


def main() -> None:
    options = parse_options()
    database, redis = base_urls()
    with throwaway_database(database, DATABASE_NAME) as url:
        try:
            setup_project(url, private_redis(redis))
            figures = run(options)
        finally:
            close_database()
        report(figures, server_version(url))


if __name__ == "__main__":
    main()
