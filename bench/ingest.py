"""Metric ingestion and query figures: points/s through the API against a raw COPY, and query
latency over raw points and rollups.

    .venv/bin/python bench/ingest.py [--duration 8] [--clients 4] [--workers N]
                                     [--batch 5000] [--series 1000] [--points 2000000]
                                     [--queries 20] [--skip-query]

Creates a throwaway database `noc_bench_ingest` on the PostgreSQL server the project uses (the
embedded one unless DATABASE_URL is set), migrates it, then:

1. ingestion: starts the server `make run` uses (uvicorn on `noc.asgi`, `--workers` processes,
   DEBUG off) on a free loopback port, and posts `--batch`-point batches over `--series`
   series (every batch covers every series, with times no batch repeats) from `--clients`
   keep-alive connections for `--duration` seconds, to `POST /api/metrics/ingest` (JSON,
   gzip) and `POST /v1/metrics` (OTLP protobuf, gzip). Each run alternates with the ceiling:
   a raw binary `COPY` of the same number of rows, in the same batch size, from one client,
   into the same table. Floor (issue 11): 100,000 points/s through the API and 0.4 of COPY;
2. queries: fills the table with `--points` points over 30 days on the same series (COPY),
   refreshes metrics_hourly and metrics_daily, then times `GET /api/metrics/query` (agg=p95)
   for 1 h, 24 h and 30 d ranges, on one series and on a name's 10 % of the series, reading
   raw points and each rollup (p50/p95 of `--queries` each).

Bodies are built before the clock starts. It prints the figures, the machine's load, and drops
the database.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.common import (  # noqa: E402 - the project root first
    CpuMeter,
    bench_application,
    free_port,
    ingest_server_environment,
    median,
    percentile,
    process_tree,
    ratio,
    server_version,
    start_process,
    stop_process,
    tail,
    throwaway_database,
    wait_for_http,
)
from bench.pings import (  # noqa: E402
    attach_project,
    close_database,
    migrate,
    use_database,
    uvicorn_command,
)

DATABASE_NAME = "noc_bench_ingest"
FLOOR_POINTS_PER_SECOND = 100_000
FLOOR_RATIO = 0.4
NAMES = 10  # series are spread over this many metric names


@dataclass(frozen=True)
class Options:
    duration: float
    clients: int
    workers: int
    batch: int
    series: int
    points: int
    queries: int
    skip_query: bool


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch", type=int, default=5000, help="points per request")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points", type=int, default=2_000_000, help="points for the queries")
    parser.add_argument("--queries", type=int, default=20, help="timed queries of each kind")
    parser.add_argument("--skip-query", action="store_true")
    a = parser.parse_args(argv)
    return Options(
        a.duration, a.clients, a.workers, a.batch, a.series, a.points, a.queries, a.skip_query
    )


# --- bodies -------------------------------------------------------------------------------------


def series_of(index: int) -> tuple[str, dict[str, str]]:
    return f"bench_metric_{index % NAMES}", {"instance": f"i{index}", "job": "bench"}


def batch_points(number: int, options: Options, base_s: float) -> list[tuple]:
    """(series index, epoch seconds, value) of batch `number`: every series, the batch's own
    seconds (so no two batches write the same point)."""
    per_series = max(options.batch // options.series, 1)
    found = []
    for j in range(per_series):
        t = base_s + number * per_series + j
        found.extend((s, t, float(number + s + j)) for s in range(options.series))
    return found[: options.batch]


def json_body(points: list[tuple]) -> bytes:
    document = {"points": []}
    append = document["points"].append
    for s, t, value in points:
        name, labels = series_of(s)
        append({"name": name, "labels": labels, "value": value, "time": t})
    return gzip.compress(json.dumps(document).encode(), compresslevel=1)


def otlp_body(points: list[tuple]) -> bytes:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="bench"))
    )
    metrics = resource.scope_metrics.add().metrics
    gauges = {}
    for s, t, value in points:
        name, labels = series_of(s)
        name = f"otlp_{name}"  # series of their own (queries read the JSON API's)
        if name not in gauges:
            gauges[name] = metrics.add(name=name).gauge.data_points
        point = gauges[name].add(time_unix_nano=int(t * 1e9), as_double=value)
        for key, label in labels.items():
            point.attributes.append(KeyValue(key=key, value=AnyValue(string_value=label)))
    return gzip.compress(request.SerializeToString(), compresslevel=1)


def bodies_for(kind: str, first: int, count: int, options: Options, base_s: float) -> list[bytes]:
    build = json_body if kind == "json" else otlp_body
    return [build(batch_points(first + i, options, base_s)) for i in range(count)]


# --- ingestion ----------------------------------------------------------------------------------


def post_all(port: int, path: str, bodies: list[bytes], headers: dict, duration: float,
             clients: int) -> tuple[int, int, float]:  # fmt: skip
    """Post each body once from `clients` connections until they run out or `duration` ends.
    Returns (answered 200, other answers, elapsed seconds)."""
    counts, stop = {"ok": 0, "bad": 0, "next": 0}, time.monotonic() + duration
    lock = threading.Lock()
    errors: list[str] = []

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.monotonic() < stop:
            with lock:
                if counts["next"] >= len(bodies):
                    break
                body = bodies[counts["next"]]
                counts["next"] += 1
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            with lock:
                # Every point stored: OTLP answers an empty message, the JSON API rejected 0.
                if response.status == 200 and (not answer or b'"rejected":0,' in answer):
                    counts["ok"] += 1
                else:
                    counts["bad"] += 1
                    if len(errors) < 3:
                        errors.append(f"{response.status} {answer[:300]!r}")
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        print(f"  {path}: {errors}", file=sys.stderr)
    return counts["ok"], counts["bad"], time.monotonic() - started


def series_ids(application_id: int, count: int) -> dict[int, int]:
    """{series index: id} of the JSON API's bench series (created by its warm-up requests)."""
    from observability.models import MetricSeries

    found = MetricSeries.objects.filter(application_id=application_id).exclude(
        name__startswith="otlp_"
    )
    by_key = {(name, labels["instance"]): pk for pk, name, labels in found.values_list(
        "id", "name", "labels")}  # fmt: skip
    return {s: by_key[(series_of(s)[0], series_of(s)[1]["instance"])] for s in range(count)}


def copy_payloads(ids: dict[int, int], rows: int, options: Options, base_s: float) -> list[bytes]:
    from observability.storage import copy_payload

    payloads = []
    for number in range(max(rows // options.batch, 1)):
        by_series: dict[int, dict[int, float]] = {}
        for s, t, value in batch_points(number, options, base_s):
            by_series.setdefault(ids[s], {})[int(t * 1_000_000)] = value
        payloads.append(copy_payload(list(by_series.items())))
    return payloads


def copy_ceiling(database_url: str, payloads: list[bytes], batch: int) -> float:
    """Points/s of a raw binary COPY of the payloads, one transaction each, one client."""
    import psycopg

    from observability.timeseries import POINTS_TABLE

    with psycopg.connect(database_url) as conn:
        started = time.monotonic()
        for payload in payloads:
            with (
                conn.transaction(),
                conn.cursor() as cursor,
                cursor.copy(
                    f"COPY {POINTS_TABLE} (series_id, time, value) FROM STDIN (FORMAT BINARY)"
                ) as cp,
            ):
                cp.write(payload)
        return len(payloads) * batch / (time.monotonic() - started)


def ingestion(port: int, server_pid: int, database_url: str, key: str, application_id: int,
              options: Options) -> list[str]:  # fmt: skip
    from noc.timeseries import partitions
    from observability.timeseries import METRIC_POINTS

    now = datetime.now(UTC)
    partitions.ensure(METRIC_POINTS, now - timedelta(days=2), now + timedelta(days=1))
    auth = {"Authorization": f"Bearer {key}", "Content-Encoding": "gzip"}
    endpoints = [
        ("/api/metrics/ingest", "json", {**auth, "Content-Type": "application/json"}),
        ("/v1/metrics", "otlp", {**auth, "Content-Type": "application/x-protobuf"}),
    ]
    # Enough bodies for 2.5x the floor over a run; each run and endpoint its own seconds.
    per_run = int(FLOOR_POINTS_PER_SECOND * 2.5 * options.duration / options.batch) + 1
    per_series = max(options.batch // options.series, 1)
    span_s = (per_run + 10) * per_series
    base = now.timestamp() - 40 * 60  # runs fill the 40 minutes before now
    lines, slot = [], 0
    for path, kind, headers in endpoints:
        warm = bodies_for(kind, 0, 4, options, base - span_s * (slot + 1))
        slot += 1
        post_all(port, path, warm, headers, 60, options.clients)  # creates and caches the series
        ids = series_ids(application_id, options.series)
        rates, ceilings, cpu = [], [], []
        for _ in range(2):
            run_base = base - span_s * (slot + 1)
            slot += 1
            print(f"  {path}: building {per_run} bodies", flush=True)
            bodies = bodies_for(kind, 0, per_run, options, run_base)
            meter = CpuMeter({"server": lambda: process_tree(server_pid)})
            with meter:
                ok, bad, elapsed = post_all(port, path, bodies, headers, options.duration,
                                            options.clients)  # fmt: skip
            if bad:
                raise SystemExit(f"{path}: {bad} requests were not answered 200")
            points = ok * options.batch
            rates.append(points / elapsed)
            cpu.append(meter.usage.groups["server"] * 1e6 / max(points, 1))
            copy_base = base - span_s * (slot + 1)
            slot += 1
            payloads = copy_payloads(ids, points, options, copy_base)
            ceilings.append(copy_ceiling(database_url, payloads, options.batch))
            print(f"  {path}: {rates[-1]:,.0f} points/s, COPY {ceilings[-1]:,.0f}, "
                  f"machine busy {meter.usage.busy_fraction:.0%}", flush=True)  # fmt: skip
        rate, ceiling = median(rates), median(ceilings)
        verdict = (
            "meets"
            if rate >= FLOOR_POINTS_PER_SECOND and ratio(rate, ceiling) >= FLOOR_RATIO
            else "misses"
        )
        lines.append(
            f"{path:<20} {rate:>9,.0f} points/s (runs {', '.join(f'{r:,.0f}' for r in rates)}); "
            f"server CPU {median(cpu):.1f} µs/point; raw COPY (1 client) {ceiling:,.0f} points/s; "
            f"ratio {ratio(rate, ceiling):.2f} — {verdict} the floor "
            f"({FLOOR_POINTS_PER_SECOND:,}/s and {FLOOR_RATIO} of COPY)"
        )
    return lines


# --- queries ------------------------------------------------------------------------------------


def fill(database_url: str, ids: dict[int, int], total: int) -> float:
    """`total` points over the 30 days up to a minute ago, evenly per series. Their times are
    half a second off the whole seconds the ingestion runs wrote, so none collides."""
    import psycopg

    from noc.timeseries import partitions
    from observability.storage import copy_payload
    from observability.timeseries import METRIC_POINTS, POINTS_TABLE

    now = datetime.now(UTC)
    end_us = (int(now.timestamp()) - 60) * 1_000_000 + 500_000
    span_us = 30 * 86_400_000_000
    partitions.ensure(METRIC_POINTS, now - timedelta(days=31), now + timedelta(days=1))
    per_series = max(total // len(ids), 1)
    every = span_us // per_series // 1_000_000 * 1_000_000  # whole seconds
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        chunk = max(50_000 // len(ids), 1)
        for first in range(0, per_series, chunk):
            rows = []
            for s, series_id in ids.items():
                points = {
                    end_us - span_us + i * every + s: float((i * 7 + s) % 1000)
                    for i in range(first, min(first + chunk, per_series))
                }
                rows.append((series_id, points))
            with (
                conn.cursor() as cursor,
                cursor.copy(
                    f"COPY {POINTS_TABLE} (series_id, time, value) FROM STDIN (FORMAT BINARY)"
                ) as cp,
            ):
                cp.write(copy_payload(rows))
            done = min(first + chunk, per_series) * len(ids)
            print(f"\r  loaded {done:,} / {per_series * len(ids):,} points", end="", flush=True)
        print()
        conn.execute(f"VACUUM ANALYZE {POINTS_TABLE}")
    return time.monotonic() - started


def timed_queries(port: int, token: str, params: dict, count: int) -> tuple[list[float], dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}"}
    timings, answer = [], {}
    for _ in range(count):
        started = time.perf_counter()
        conn.request("GET", f"/api/metrics/query?{urlencode(params)}", headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"query {params}: {response.status} {body[:300]!r}")
        timings.append((time.perf_counter() - started) * 1000)
        answer = json.loads(body)
    return timings, answer


QUERIES = [
    # (label, range, step, one series?)
    ("1 h, raw", "-1h", "1m", True),
    ("24 h, raw", "-24h", "15m", True),
    ("24 h, metrics_hourly", "-24h", "1h", True),
    ("30 d, raw", "-30d", "30m", True),
    ("30 d, metrics_hourly", "-30d", "6h", True),
    ("30 d, metrics_daily", "-30d", "1d", True),
    ("1 h, raw", "-1h", "1m", False),
    ("24 h, raw", "-24h", "15m", False),
    ("24 h, metrics_hourly", "-24h", "1h", False),
    ("30 d, metrics_hourly", "-30d", "12h", False),
    ("30 d, metrics_daily", "-30d", "1d", False),
]


def queries(port: int, database_url: str, token: str, ids: dict[int, int],
            options: Options) -> list[str]:  # fmt: skip
    from noc.timeseries.rollups import refresh
    from observability.timeseries import METRICS_DAILY, METRICS_HOURLY

    loaded = fill(database_url, ids, options.points)
    started = time.monotonic()
    hourly = refresh(METRICS_HOURLY)
    hourly_s = time.monotonic() - started
    started = time.monotonic()
    daily = refresh(METRICS_DAILY)
    daily_s = time.monotonic() - started
    total = max(options.points // len(ids), 1) * len(ids)
    lines = [
        f"query data: {total:,} points on {len(ids):,} series over 30 days, loaded in "
        f"{loaded:.0f} s; first refresh: metrics_hourly {hourly:,} buckets in {hourly_s:.0f} s, "
        f"metrics_daily {daily:,} in {daily_s:.0f} s"
    ]
    name, labels = series_of(3)
    for label, since, step, single in QUERIES:
        params = {"name": name, "from": since, "step": step, "agg": "p95"}
        if single:
            params["labels"] = f"instance={labels['instance']}"
        timed_queries(port, token, params, 2)  # warm-up
        timings, answer = timed_queries(port, token, params, options.queries)
        points = sum(len(s["points"]) for s in answer["series"])
        lines.append(
            f"query {label:<21} {len(answer['series']):>3} series, step {step:>3}: "
            f"p50 {percentile(timings, 50):7.1f} ms, p95 {percentile(timings, 95):7.1f} ms "
            f"({points:,} points, source {answer['source']})"
        )
    return lines


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    admin_url, redis_url = attach_project()
    postgres = server_version(admin_url)
    report = []
    with throwaway_database(admin_url, DATABASE_NAME) as database_url:
        env = ingest_server_environment(database_url, redis_url)
        migrate(env)
        use_database(DATABASE_NAME)
        try:
            application, key, token = bench_application()
            port = free_port()
            with tempfile.TemporaryDirectory(prefix="noc-bench-ingest-") as tmp:
                log = Path(tmp) / "uvicorn.log"
                proc = start_process(
                    uvicorn_command("noc.asgi:application", port, options.workers),
                    env=env, log=log, cwd=BASE_DIR,
                )  # fmt: skip
                try:
                    wait_for_http(f"http://127.0.0.1:{port}/health/live", timeout=60, proc=proc)
                    report += ingestion(port, proc.pid, database_url, key, application.pk,
                                        options)  # fmt: skip
                    if not options.skip_query:
                        ids = series_ids(application.pk, options.series)
                        report += queries(port, database_url, token, ids, options)
                except BaseException:
                    print(f"uvicorn log:\n{tail(log)}", file=sys.stderr)
                    raise
                finally:
                    stop_process(proc)
        finally:
            close_database()
    print()
    print(f"machine: {os.cpu_count()} cores, PostgreSQL {postgres}, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")  # fmt: skip
    print(f"server:  uvicorn noc.asgi ×{options.workers}, {options.clients} client connections, "
          f"{options.batch:,} points a request over {options.series:,} series")  # fmt: skip
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
