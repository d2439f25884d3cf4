"""Logs and alert rules: ingestion, search and evaluation figures on the PostgreSQL store.

    .venv/bin/python bench/logs.py [--duration 10] [--batch 1000] [--connections 4]
                                   [--server uvicorn] [--workers 2] [--lines 5000000] [--queries 40]
                                   [--rules 1000] [--skip-search]
                                   [--trigram-index closed|all|off]

Creates a throwaway database `noc_bench_logs` on the PostgreSQL server the project uses (the
embedded one unless DATABASE_URL is set), migrates it, then:

1. ingestion: starts the server `make run` uses (uvicorn on `noc.asgi`, `--workers` processes;
   `--server gunicorn` for gunicorn's sync workers on `noc.wsgi`) on a free loopback port and
   posts prebuilt batches of `--batch` lines from `--connections` keep-alive connections for
   `--duration` seconds, to `POST /api/logs/ingest` (JSON, gzip) and, where the OTLP receiver
   exists, `POST /v1/logs` (protobuf); alternately with the ceiling: a raw binary `COPY` of the
   same number of rows, in the same batches, on as many connections, into the same table (same
   partitions and indexes). Floor: 50,000 lines/s and 0.3 of the COPY;
2. search: fills the table with `--lines` lines over 7 days (COPY with the indexes dropped,
   then rebuilt, as a bulk load would), then times `GET /api/logs/search` through that server
   for a rare word in the last 24 h and a phrase over 7 days (p50/p95 of `--queries` each;
   goal: p95 under 200 ms), with EXPLAIN ANALYZE of one of each;
The trigram index (substring search) is kept per partition as LOG_TRIGRAM_INDEX says (default
`closed`: the days past only); `--trigram-index` puts it where asked before the ingestion and
after the search data's load, as the maintenance task would.

3. alert rules: `--rules` rules over as many series with an hour of points every 10 s,
   `observability.actions.alerts_evaluate` timed over 5 runs after a first one.

It prints the figures, the machine's load, and drops the database.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    processes_matching,
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

DATABASE_NAME = "noc_bench_logs"
FLOOR_LINES_PER_SECOND = 50_000
FLOOR_RATIO = 0.3
SEARCH_GOAL_MS = 200
WORDS = (
    "request",
    "served",
    "user",
    "order",
    "payment",
    "cache",
    "miss",
    "hit",
    "database",
    "query",
    "slow",
    "retry",
    "upstream",
    "timeout",
    "gateway",
    "worker",
    "job",
    "queued",
    "started",
    "finished",
    "session",
    "login",
    "logout",
    "token",
    "refresh",
    "invoice",
    "shipment",
    "warehouse",
    "stock",
    "update",
    "delete",
    "create",
    "account",
    "profile",
    "image",
    "upload",
    "download",
    "checksum",
    "verified",
    "failed",
    "succeeded",
    "connection",
    "pool",
    "acquired",
    "released",
)
RARE_WORD = "zanzibarquux"
PHRASE = "connection reset by peer"


@dataclass(frozen=True)
class Options:
    duration: float
    batch: int
    connections: int
    server: str
    workers: int
    lines: int
    queries: int
    rules: int
    skip_search: bool
    trigram_index: str


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1000, help="lines per request")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--server", choices=("uvicorn", "gunicorn"), default="uvicorn",
        help="uvicorn on noc.asgi (what make run uses) or gunicorn sync on noc.wsgi",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--lines", type=int, default=5_000_000, help="lines for the search")
    parser.add_argument("--queries", type=int, default=40, help="searches of each kind")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument(
        "--trigram-index",
        choices=("closed", "all", "off"),
        default="closed",
        help="which partitions carry the pg_trgm index (LOG_TRIGRAM_INDEX)",
    )
    args = parser.parse_args(argv)
    return Options(
        args.duration, args.batch, args.connections, args.server, args.workers, args.lines,
        args.queries, args.rules, args.skip_search, args.trigram_index,
    )  # fmt: skip


def server_command(port: int, options: Options) -> list[str]:
    if options.server == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "noc.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(options.workers), "--no-control-socket",
            "--log-level", "warning", "--timeout", "120",
        ]  # fmt: skip
    return uvicorn_command("noc.asgi:application", port, options.workers)


def server_name(options: Options) -> str:
    if options.server == "gunicorn":
        return f"gunicorn sync ×{options.workers} on noc.wsgi"
    return f"uvicorn ×{options.workers} on noc.asgi (as make run)"


# --- lines ------------------------------------------------------------------------------------


def message(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(6, 14))
    words.insert(rng.randint(0, len(words)), f"id={rng.randint(1, 10**6)}")
    return " ".join(words)


def json_body(rng: random.Random, batch: int) -> bytes:
    now = time.time()
    lines = [
        {
            "time": now - rng.random() * 60, "level": rng.choice(("info", "info", "warn", "error")),
            "message": message(rng), "service": rng.choice(("api", "worker", "web")),
            "attributes": {"user": rng.randint(1, 5000)},
        }
        for _ in range(batch)
    ]  # fmt: skip
    return gzip.compress(json.dumps({"logs": lines}).encode(), compresslevel=1)


def otlp_body(rng: random.Random, batch: int) -> bytes:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="api"))
    )
    records = resource_logs.scope_logs.add().log_records
    now_ns = time.time_ns()
    for _ in range(batch):
        record = records.add()
        record.time_unix_nano = now_ns - int(rng.random() * 60e9)
        record.severity_number = rng.choice((9, 9, 13, 17))
        record.body.string_value = message(rng)
        record.attributes.append(
            KeyValue(key="user", value=AnyValue(int_value=rng.randint(1, 5000)))
        )
    return request.SerializeToString()


# --- ingestion ----------------------------------------------------------------------------------


def post_for(port: int, path: str, bodies: list[bytes], headers: dict, duration: float,
             connections: int) -> tuple[int, int, float]:  # fmt: skip
    """Post the bodies round-robin from `connections` threads for `duration` seconds. Returns
    (requests answered 200, other answers, elapsed seconds)."""
    counts, stop = {"ok": 0, "bad": 0}, time.monotonic() + duration
    lock = threading.Lock()

    def run(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        position = offset
        while time.monotonic() < stop:
            body = bodies[position % len(bodies)]
            position += 1
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            with lock:
                counts["ok" if response.status == 200 else "bad"] += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts["ok"], counts["bad"], time.monotonic() - started


def copy_ceiling(database_url: str, application_id: int, rows: int, batch: int,
                 connections: int) -> float:  # fmt: skip
    """Lines/s of a raw binary COPY of `rows` rows in `batch`-row transactions, from
    `connections` connections, into the same table."""
    import psycopg

    from observability.logs.postgres import COLUMNS, TABLE, copy_payload
    from observability.logs.records import LogRecord, new_uid
    from observability.points import to_us

    rng = random.Random(7)
    now_us = to_us(datetime.now(UTC))
    per_connection = max(rows // batch // connections, 1)
    payloads = []  # built before the clock starts, every row with its own id
    for _ in range(per_connection * connections):
        records = []
        for _ in range(batch):
            t = now_us - int(rng.random() * 60e6)
            records.append(LogRecord(new_uid(t), t, application_id, "info", message(rng),
                                     "api", "", "", "", {"user": 1}))  # fmt: skip
        payloads.append(copy_payload(records))

    def run(offset: int) -> None:
        with psycopg.connect(database_url) as conn:
            for i in range(offset, len(payloads), connections):
                with (
                    conn.transaction(),
                    conn.cursor() as cursor,
                    cursor.copy(f"COPY {TABLE} {COLUMNS} FROM STDIN (FORMAT BINARY)") as cp,
                ):
                    cp.write(payloads[i])

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_connection * connections * batch / (time.monotonic() - started)


def ingestion(port: int, server_pid: int, database_url: str, key: str, application_id: int,
              options: Options, otlp: bool) -> list[str]:  # fmt: skip
    rng = random.Random(1)
    auth = {"Authorization": f"Bearer {key}"}
    endpoints = [(
        "/api/logs/ingest",
        [json_body(rng, options.batch) for _ in range(8)],
        {**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )]  # fmt: skip
    if otlp:
        endpoints.append((
            "/v1/logs", [otlp_body(rng, options.batch) for _ in range(8)],
            {**auth, "Content-Type": "application/x-protobuf"},
        ))  # fmt: skip
    lines = []
    for path, bodies, headers in endpoints:
        post_for(port, path, bodies, headers, 2, options.connections)  # warm-up
        rates, ceilings, cpu = [], [], []
        for _ in range(2):
            meter = CpuMeter({
                "server": lambda: process_tree(server_pid),
                "postgres": lambda: processes_matching(f" {DATABASE_NAME} "),
            })  # fmt: skip
            with meter:
                ok, bad, elapsed = post_for(port, path, bodies, headers, options.duration,
                                            options.connections)  # fmt: skip
            if bad:
                raise SystemExit(f"{path}: {bad} requests were not answered 200")
            rates.append(ok * options.batch / elapsed)
            usage, lines_posted = meter.usage, max(ok * options.batch, 1)
            cpu.append(
                (
                    usage.groups["server"] * 1e6 / lines_posted,
                    usage.groups["postgres"] * 1e6 / lines_posted,
                    usage.busy_fraction,
                )
            )
            ceilings.append(copy_ceiling(database_url, application_id, ok * options.batch,
                                         options.batch, options.connections))  # fmt: skip
        rate, ceiling = median(rates), median(ceilings)
        verdict = (
            "meets"
            if rate >= FLOOR_LINES_PER_SECOND and ratio(rate, ceiling) >= FLOOR_RATIO
            else "misses"
        )
        lines.append(
            f"{path:<18} {rate:>9,.0f} lines/s (runs {', '.join(f'{r:,.0f}' for r in rates)}); "
            f"raw COPY {ceiling:,.0f} lines/s; ratio {ratio(rate, ceiling):.2f} — {verdict} the "
            f"floor ({FLOOR_LINES_PER_SECOND:,}/s and {FLOOR_RATIO} of COPY)"
        )
        lines.append(
            f"{'':<18} CPU per line: server {median([c[0] for c in cpu]):.1f} µs, PostgreSQL "
            f"{median([c[1] for c in cpu]):.1f} µs; machine busy "
            f"{', '.join(f'{c[2]:.0%}' for c in cpu)}"
        )
    return lines


def index_costs(database_url: str, rows: int = 50_000) -> list[str]:
    """What each index costs a COPY: the same rows into three plain tables shaped like the log
    table (generated tsvector included), without GIN indexes, with the tsvector's, and with
    the trigram one too."""
    import psycopg

    from observability.logs.postgres import COLUMNS, copy_payload
    from observability.logs.records import LogRecord, new_uid
    from observability.points import to_us

    rng = random.Random(11)
    now_us = to_us(datetime.now(UTC))
    payloads = []
    for _ in range(rows // 1000):
        records = []
        for _ in range(1000):
            t = now_us - int(rng.random() * 60e6)
            records.append(LogRecord(new_uid(t), t, 1, "info", message(rng), "api"))
        payloads.append(copy_payload(records))
    shapes = {
        "no GIN index": [],
        "tsvector GIN": ["CREATE INDEX ON {t} USING gin (search)"],
        "tsvector + trigram GIN": [
            "CREATE INDEX ON {t} USING gin (search)",
            "CREATE INDEX ON {t} USING gin (message gin_trgm_ops)",
        ],
    }
    found = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        trigram = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone()
        for number, (name, indexes) in enumerate(shapes.items()):
            if "trigram" in name and not trigram:
                continue
            table = f"bench_copy_{number}"
            conn.execute(
                f"CREATE TABLE {table} (uid uuid, time timestamptz, application_id bigint, "
                "level varchar(8), service varchar(200), host varchar(255), "
                "trace_id varchar(32), span_id varchar(16), message text, attributes jsonb, "
                "search tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, message)) "
                "STORED, PRIMARY KEY (time, uid))"
            )
            for index in indexes:
                conn.execute(index.format(t=table))
            started = time.monotonic()
            for payload in payloads:
                with (
                    conn.transaction(),
                    conn.cursor() as cursor,
                    cursor.copy(f"COPY {table} {COLUMNS} FROM STDIN (FORMAT BINARY)") as cp,
                ):
                    cp.write(payload)
            found.append(f"{name} {rows / (time.monotonic() - started):,.0f}")
            conn.execute(f"DROP TABLE {table}")
    return ["COPY by index:     " + ", ".join(found) + " lines/s (one connection)"]


# --- search -------------------------------------------------------------------------------------


def keep_trigram_index(on: str) -> dict[str, list[str]]:
    """The maintenance task's work on the trigram index, with `on` as LOG_TRIGRAM_INDEX."""
    from dataclasses import replace

    from noc.timeseries import partitions
    from observability.timeseries import LOG_LINES, MESSAGE_TRIGRAMS

    index = replace(MESSAGE_TRIGRAMS, on=on)
    return partitions.keep_indexes(replace(LOG_LINES, partition_indexes=(index,)))


def fill(database_url: str, application_id: int, total: int,
         trigram_index: str) -> tuple[float, float]:  # fmt: skip
    """`total` lines over the last 7 days, a rare word in 50 of the last day's and the phrase
    in 0.1 %; indexes dropped during the load and rebuilt. Returns (load s, index s)."""
    import psycopg

    from noc.timeseries import partitions
    from observability.logs.postgres import COLUMNS, TABLE, copy_payload
    from observability.logs.records import LogRecord, new_uid
    from observability.points import to_us
    from observability.timeseries import LOG_LINES

    rng = random.Random(3)
    now_us = to_us(datetime.now(UTC))
    span = 7 * 86_400_000_000
    now = datetime.now(UTC)
    partitions.ensure(LOG_LINES, now - timedelta(days=8), now + timedelta(days=1))
    rare = set(rng.sample(range(total // 7), 50))  # positions within the last day's share
    with psycopg.connect(database_url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
            "AND indexname NOT LIKE '%%pkey'", [TABLE],
        ).fetchall()  # fmt: skip
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        started = time.monotonic()
        chunk = 50_000
        for start in range(0, total, chunk):
            records = []
            for i in range(start, min(start + chunk, total)):
                t = now_us - span + int(span * i / total)
                text = message(rng)
                if total - i <= total // 7 and (total - i) in rare:
                    text += f" {RARE_WORD}"
                if rng.random() < 0.001:
                    text = f"{text} {PHRASE}"
                level = rng.choice(("info", "warn", "error"))
                records.append(LogRecord(new_uid(t), t, application_id, level, text, "api"))
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY {TABLE} {COLUMNS} FROM STDIN (FORMAT BINARY)") as cp,
            ):
                cp.write(copy_payload(records))
            print(f"\r  loaded {min(start + chunk, total):,} / {total:,} lines", end="",
                  flush=True)  # fmt: skip
        loaded = time.monotonic() - started
        print()
        started = time.monotonic()
        conn.execute("SET maintenance_work_mem = '512MB'")
        for name, definition in indexes:
            print(f"  rebuilding {name}", flush=True)
            # pg_indexes gives a partitioned table's index as `ON ONLY`, which would build an
            # invalid parent and no partition's index: build it on every partition.
            conn.execute(definition.replace(" ON ONLY ", " ON ", 1))
        invalid = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass "
            "AND NOT indisvalid", [TABLE],
        ).fetchall()  # fmt: skip
        if invalid:
            raise SystemExit(f"indexes left invalid after the load: {invalid}")
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        keep_trigram_index(trigram_index)
        return loaded, time.monotonic() - started


def timed_searches(port: int, token: str, params: dict, count: int) -> list[float]:
    from urllib.parse import urlencode

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("GET", f"/api/logs/search?{urlencode(params)}", headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"search {params}: {response.status} {body[:300]!r}")
        timings.append((time.perf_counter() - started) * 1000)
    found = len(json.loads(body)["results"])
    print(f"  {params}: {found} lines on the first page")
    return timings


def explain(q: str, since: datetime) -> str:
    """EXPLAIN ANALYZE of the statements the store itself runs for the first page (captured
    from Django's connection as the API runs them), not a query written for the benchmark."""
    from django.db import connection

    from observability.logs.query import LogQuery, parse
    from observability.logs.store import log_store

    captured: list[tuple[str, list]] = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, list(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        log_store().search(LogQuery(terms=parse(q), since=since))
    out = []
    with connection.cursor() as cursor:
        for number, (sql, params) in enumerate(captured, 1):
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            lines = [row[0] for row in cursor.fetchall()]
            took = next(line for line in lines if "Execution Time" in line)
            slow = float(took.split()[-2]) >= SEARCH_GOAL_MS / 4  # the whole plan of a slow one
            out += [f"statement {number} of {len(captured)}:", *(lines if slow else lines[:4])]
            out += [] if slow else [took]
    return "\n    ".join(out)


def search(port: int, database_url: str, token: str, application_id: int,
           options: Options) -> list[str]:  # fmt: skip
    loaded, indexed = fill(database_url, application_id, options.lines, options.trigram_index)
    now = datetime.now(UTC)
    week = (now - timedelta(days=7)).isoformat()
    kinds = [
        ("rare word, 24 h", {"q": RARE_WORD}, now - timedelta(days=1)),
        ("phrase, 7 days", {"q": f'"{PHRASE}"', "from": week}, now - timedelta(days=7)),
    ]
    lines = [f"search data: {options.lines:,} lines over 7 days loaded in {loaded:.0f} s, "
             f"indexes built in {indexed:.0f} s"]  # fmt: skip
    for name, params, since in kinds:
        timed_searches(port, token, params, 3)  # warm-up
        timings = timed_searches(port, token, params, options.queries)
        p50, p95 = percentile(timings, 50), percentile(timings, 95)
        verdict = "meets" if p95 < SEARCH_GOAL_MS else "misses"
        lines.append(f"search {name:<16} p50 {p50:6.1f} ms, p95 {p95:6.1f} ms through the API "
                     f"— {verdict} the goal (p95 < {SEARCH_GOAL_MS} ms)")  # fmt: skip
        lines.append("    " + explain(params["q"], since))
    return lines


# --- alert rules --------------------------------------------------------------------------------


def alert_rules(application, count: int) -> list[str]:
    from observability import actions
    from observability.points import MetricPoint, to_us

    rng = random.Random(5)
    now = datetime.now(UTC)
    points = []
    for series in range(count):
        for step in range(360):
            when = now - timedelta(seconds=10 * step)
            points.append(MetricPoint(f"bench_metric_{series % 50}", {"instance": str(series)},
                                      rng.random() * 100, to_us(when)))  # fmt: skip
        if len(points) >= 40_000:
            actions.metric_points_ingest(application=application, points=points)
            points = []
    actions.metric_points_ingest(application=application, points=points)
    aggregations = ("avg", "max", "min", "sum", "count", "last", "p95")
    for i in range(count):
        absent = i % 20 == 0
        actions.alert_rule_create(
            actor=None, name=f"bench rule {i}", metric=f"bench_metric_{i % 50}",
            match_labels={"instance": str(i)}, aggregation=aggregations[i % len(aggregations)],
            window_seconds=rng.choice((300, 900, 3600)),
            condition="absent" if absent else rng.choice(("gt", "lt")),
            threshold=None if absent else rng.random() * 100, for_seconds=rng.choice((0, 60)),
        )  # fmt: skip
    started = time.perf_counter()
    actions.alerts_evaluate()
    first = time.perf_counter() - started
    runs = []
    for run in range(5):
        started = time.perf_counter()
        actions.alerts_evaluate(now=datetime.now(UTC) + timedelta(seconds=61 * (run + 1)))
        runs.append(time.perf_counter() - started)
    from observability.models import Alert

    open_alerts = Alert.objects.exclude(status="resolved").count()
    return [
        f"alert rules:       {count:,} rules over {count:,} series (360 points each); "
        f"evaluation {median(runs) * 1000:,.0f} ms median of 5 (runs "
        f"{', '.join(f'{r * 1000:,.0f}' for r in runs)} ms), first {first * 1000:,.0f} ms; "
        f"{open_alerts} alerts open"
    ]


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
            from django.urls import NoReverseMatch, reverse

            application, key, token = bench_application()
            try:
                reverse("otlp-logs")
                otlp = True
            except NoReverseMatch:
                otlp = False
            port = free_port()
            with tempfile.TemporaryDirectory(prefix="noc-bench-logs-") as tmp:
                log = Path(tmp) / "server.log"
                proc = start_process(server_command(port, options), env=env, log=log, cwd=BASE_DIR)
                try:
                    wait_for_http(f"http://127.0.0.1:{port}/health/live", timeout=60, proc=proc)
                    keep_trigram_index(options.trigram_index)
                    report += ingestion(
                        port, proc.pid, database_url, key, application.pk, options, otlp
                    )
                    report += index_costs(database_url)
                    if not otlp:
                        report.append("/v1/logs           not measured: no OTLP logs receiver")
                    if not options.skip_search:
                        report += search(port, database_url, token, application.pk, options)
                except Exception:
                    print(f"server log:\n{tail(log)}", file=sys.stderr)
                    raise
                finally:
                    stop_process(proc)
            report += alert_rules(application, options.rules)
        finally:
            close_database()
    print()
    print(f"machine: {os.cpu_count()} cores, PostgreSQL {postgres}, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")  # fmt: skip
    print(f"server:  {server_name(options)}, {options.connections} client connections, "
          f"{options.batch} lines a request; trigram index: {options.trigram_index}")  # fmt: skip
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
