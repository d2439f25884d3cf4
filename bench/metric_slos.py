"""Metric-based SLOs: reading and evaluating every ratio SLO at once over 30 days of counters.

    .venv/bin/python bench/metric_slos.py [--slos 1000] [--runs 5]

Creates a throwaway database `noc_bench_metric_slos` on the PostgreSQL server the project uses
(the embedded one unless DATABASE_URL is set), migrates it, and then:

- creates one application and `--slos` ratio SLOs (30-day window, 99.9 %), each over its own
  pair of counters (`requests_total` and `requests_ok_total`, label `route`);
- generates what an evaluation reads, as the native refresh leaves it: 30 days of those
  counters in `metrics_daily` and `metrics_hourly` (one row a series a day and an hour) and
  the last 7 hours as raw points, one a minute (with a restart now and then), watermarks
  settled;
- times `slos.metric_sli.read` (the read alone) and `slos.actions.slos_evaluate` (read, history,
  cache, alerts), `--runs` runs after a warm-up, each at another minute; and the ceiling: one
  plain scan (count and sum) of the same rows (daily rows of the window, the hourly rows
  around them, the raw points of the last 7 hours), alternately, so load on the machine hits
  all alike.

It prints the figures and drops the database.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.checks import base_urls, private_redis  # noqa: E402 - the project root first
from bench.common import median, ratio, server_version, throwaway_database  # noqa: E402

DATABASE_NAME = "noc_bench_metric_slos"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup_project(database_url: str, redis_url: str) -> None:
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
    delete_prefixed()
    if backend.table_backend_of(connection, "metrics_hourly") != backend.NATIVE:
        raise SystemExit("this bench writes the native rollup tables: use NOC_TIMESERIES=native")


def generate(count: int, now: datetime) -> tuple[list, datetime]:
    """Series, rollup rows and raw points for `count` SLOs; returns (SLOs, raw points' start)."""
    from django.db import connection

    from noc.models import RollupWatermark
    from noc.timeseries import partitions
    from observability.actions import application_create
    from observability.models import MetricSeries
    from observability.series import fingerprint
    from observability.timeseries import DAILY_TABLE, HOURLY_TABLE, METRIC_POINTS
    from slos import actions

    application, _key, _secret = application_create(actor=None, slug="bench", name="Bench")
    series = []
    for i in range(count):
        for name in ("requests_total", "requests_ok_total"):
            labels = {"route": f"/r{i}"}
            key = (name, tuple(labels.items()))
            series.append(
                MetricSeries(
                    application=application, name=name, labels=labels, kind="counter",
                    fingerprint=fingerprint(key),
                )
            )  # fmt: skip
    MetricSeries.objects.bulk_create(series, batch_size=5000)
    ids = list(MetricSeries.objects.values_list("id", flat=True))
    hour = now.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    start = day - timedelta(days=31)
    raw_from = hour - timedelta(hours=7)
    partitions.ensure(METRIC_POINTS, raw_from, now + timedelta(hours=1))
    partitions.ensure(HOURLY_TABLE, start, now + timedelta(hours=1))
    partitions.ensure(DAILY_TABLE, start, now + timedelta(days=1))
    with connection.cursor() as cursor:
        # ~100 requests a minute a series, counters cumulative from the start; the ok counter
        # a little lower. Rollup rows as the refresh computes them (first, last, increase).
        cursor.execute(
            """
            INSERT INTO metrics_daily (bucket, series_id, count, sum, min, max, first, last,
                                       p95, increase)
            SELECT d, s, 1440, 0, 0, 0, g * 144000, g * 144000 + 143900, 0, 143900
            FROM unnest(%s::int[]) s, generate_series(0, 30) g,
                 LATERAL (SELECT %s::timestamptz + g * interval '1 day' AS d) b
            WHERE d < %s
            """,
            [ids, start, day],
        )
        cursor.execute(
            """
            INSERT INTO metrics_hourly (bucket, series_id, count, sum, min, max, first, last,
                                        p95, increase)
            SELECT h, s, 60, 0, 0, 0, g * 6000, g * 6000 + 5900, 0, 5900
            FROM unnest(%s::int[]) s, generate_series(0, 31 * 24 + 24) g,
                 LATERAL (SELECT %s::timestamptz + g * interval '1 hour' AS h) b
            WHERE h < %s
            """,
            [ids, start, raw_from],
        )
        cursor.execute(
            """
            INSERT INTO observability_metricpoint (series_id, time, value)
            SELECT s, %s::timestamptz + g * interval '1 minute',
                   CASE WHEN g %% 180 = 179 THEN 3 ELSE 100 * g + s %% 7 END
            FROM unnest(%s::int[]) s, generate_series(0, 7 * 60 - 1) g
            WHERE %s::timestamptz + g * interval '1 minute' < %s
            """,
            [raw_from, ids, raw_from, now],
        )
        cursor.execute("VACUUM ANALYZE metrics_daily")
        cursor.execute("VACUUM ANALYZE metrics_hourly")
        cursor.execute("VACUUM ANALYZE observability_metricpoint")
    RollupWatermark.objects.update_or_create(name="metrics_hourly", defaults={"upto": raw_from})
    RollupWatermark.objects.update_or_create(name="metrics_daily", defaults={"upto": day})
    selector = {"application": "bench"}
    for i in range(count):
        labels = {"route": f"/r{i}"}
        actions.slo_create(
            actor=None, id=f"slo-{i}", name=f"SLO {i}", sli_type="ratio", target="99.9",
            window="30d", good_metric={**selector, "name": "requests_ok_total", "labels": labels},
            total_metric={**selector, "name": "requests_total", "labels": labels},
        )  # fmt: skip
    return ids, raw_from


CEILING = """
    SELECT count(*), sum(v) FROM (
        SELECT last AS v FROM metrics_daily WHERE series_id = ANY(%(ids)s)
            AND bucket >= %(day_from)s AND bucket < %(day_to)s
        UNION ALL
        SELECT last FROM metrics_hourly WHERE series_id = ANY(%(ids)s)
            AND (bucket >= %(since)s AND bucket < %(day_from)s
                 OR bucket >= %(day_to)s AND bucket < %(raw_from)s)
        UNION ALL
        SELECT value FROM observability_metricpoint WHERE series_id = ANY(%(ids)s)
            AND time >= %(raw_from)s AND time < %(now)s
    ) r
"""


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(count: int, runs: int) -> dict:
    from django.db import connection, transaction

    from slos import actions, metric_sli
    from slos.models import SLO

    now = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=runs + 2)
    started = time.perf_counter()
    ids, raw_from = generate(count, now)
    generation = time.perf_counter() - started
    slos = list(SLO.objects.all())
    since = (now - timedelta(days=30)).replace(minute=0)
    day_from = since.replace(hour=0) + timedelta(days=1)
    ceiling_params = {
        "ids": ids, "since": since, "day_from": day_from,
        "day_to": now.replace(hour=0, minute=0), "raw_from": raw_from, "now": now,
    }  # fmt: skip

    def read(moment: datetime) -> None:
        with transaction.atomic():
            readings = metric_sli.read(actions.metric_targets(slos, moment), moment)
        assert len(readings) == count

    def ceiling() -> None:
        with connection.cursor() as cursor:
            cursor.execute(CEILING, ceiling_params)
            cursor.fetchall()

    read(now), ceiling(), actions.slos_evaluate(now=now)  # warm-up
    reads, scans, evaluations = [], [], []
    for i in range(1, runs + 1):
        moment = now + timedelta(minutes=i)
        reads.append(timed(lambda m=moment: read(m)))
        scans.append(timed(ceiling))
        evaluations.append(timed(lambda m=moment: actions.slos_evaluate(now=m)))
    with connection.cursor() as cursor:
        cursor.execute(CEILING, ceiling_params)
        rows = cursor.fetchone()[0]
    targets = actions.metric_targets(slos, now)
    lookup = timed(lambda: metric_sli._series_of(targets))
    return {
        "slos": count, "series": len(ids), "rows read": rows, "generation s": generation,
        "read s": median(reads), "ceiling s": median(scans), "evaluate s": median(evaluations),
        "series lookup s": lookup,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    database, redis = base_urls()
    with throwaway_database(database, DATABASE_NAME) as url:
        try:
            setup_project(url, private_redis(redis))
            figures = run(options.slos, options.runs)
        finally:
            from django.db import connections

            connections.close_all()
        version = server_version(url)
    print(
        f"PostgreSQL {version}; {figures['slos']:,} ratio SLOs over {figures['series']:,} "
        f"series, 30-day windows; {figures['rows read']:,} rollup rows and points read"
    )
    print(f"generation: {figures['generation s']:.1f} s (not in the figures)")
    for name in ("read s", "series lookup s", "ceiling s", "evaluate s"):
        print(f"{name[:-2]:>15}: {figures[name] * 1000:8.1f} ms")
    print(
        f"read / plain scan of the same rows: {ratio(figures['read s'], figures['ceiling s']):.2f}"
    )


if __name__ == "__main__":
    main()
