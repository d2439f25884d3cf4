"""Spans per second through OTLP/HTTP `POST /v1/traces`, against a raw `COPY` of the same rows
in the same run.

    .venv/bin/python bench/traces.py [--duration 10] [--batch 512] [--connections 4]
                                     [--workers 2] [--rounds 2] [--reads 20]

Creates a throwaway database `noc_bench_traces` on the PostgreSQL server the project uses (the
embedded one unless DATABASE_URL is set), migrates it, starts the web server `make run` uses
(uvicorn on `noc.asgi`, DEBUG off, `--workers` processes) on a free loopback port, and then,
for `--rounds` rounds: posts prebuilt protobuf export requests of `--batch` spans (traces of
8 spans, 6 attributes each, the SDK's resource; every span new, so no request takes the
idempotent retry path) with an ingest key from `--connections` keep-alive connections for
`--duration` seconds; then the ceiling: a binary `COPY` of as many rows, built by the
server's own encoder (`observability.traces.store.copy_payload`), `--batch` rows a
transaction, from as many connections, into the same table. It prints the median rates, their
ratio, then times the trace list (default range, `status=error`, `min_duration_ms`, `name`)
and one trace's tree through the API over the spans the runs left (`--reads` requests each,
p50/p95), the machine's load, and drops the database. There is no floor for spans in issue
11; the ratio says how much of the database's rate the HTTP path keeps.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.common import (  # noqa: E402 - the project root first
    bench_application,
    free_port,
    ingest_server_environment,
    median,
    percentile,
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

DATABASE_NAME = "noc_bench_traces"
SPANS_PER_TRACE = 8
NAMES = ("GET /checkout", "SELECT orders", "redis GET", "charge", "render", "POST /api/cart")


@dataclass(frozen=True)
class Options:
    duration: float
    batch: int
    connections: int
    workers: int
    rounds: int
    reads: int


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=512, help="spans a request (SDK: 512)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reads", type=int, default=20, help="timed requests of each read")
    args = parser.parse_args(argv)
    return Options(
        args.duration, args.batch, args.connections, args.workers, args.rounds, args.reads
    )


# --- spans --------------------------------------------------------------------------------------


def export_body(rng: random.Random, batch: int) -> bytes:
    """One ExportTraceServiceRequest of `batch` new spans, as the Python SDK sends them."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in (("service.name", "shop"), ("telemetry.sdk.language", "python"),
                       ("telemetry.sdk.name", "opentelemetry"),
                       ("telemetry.sdk.version", "1.39.0")):  # fmt: skip
        resource_spans.resource.attributes.append(
            KeyValue(key=key, value=AnyValue(string_value=value))
        )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "shop.web"
    now_ns = time.time_ns()
    trace_id, root_id = b"", b""
    for n in range(batch):
        span = scope_spans.spans.add()
        if n % SPANS_PER_TRACE == 0:
            trace_id, root_id = rng.randbytes(16), rng.randbytes(8)
            span.span_id, span.kind = root_id, 2
        else:
            span.span_id, span.parent_span_id, span.kind = rng.randbytes(8), root_id, 3
        span.trace_id = trace_id
        span.name = rng.choice(NAMES)
        span.start_time_unix_nano = now_ns - int(rng.random() * 60e9)
        span.end_time_unix_nano = span.start_time_unix_nano + rng.randint(10**5, 10**9)
        span.status.code = 2 if rng.random() < 0.02 else 0
        for key, value in (("http.method", AnyValue(string_value="GET")),
                           ("http.route", AnyValue(string_value="/checkout/{id}")),
                           ("http.status_code", AnyValue(int_value=200)),
                           ("net.peer.name", AnyValue(string_value="db-1.internal")),
                           ("user.id", AnyValue(int_value=rng.randint(1, 10**6))),
                           ("cache.hit", AnyValue(bool_value=rng.random() < 0.5))):  # fmt: skip
            span.attributes.append(KeyValue(key=key, value=value))
    return request.SerializeToString()


# --- measuring ----------------------------------------------------------------------------------


def post_all(port: int, bodies: list[bytes], headers: dict, duration: float,
             connections: int) -> tuple[int, int, float]:  # fmt: skip
    """Post the bodies (each once) from `connections` threads until they run out or `duration`
    passes. Returns (requests answered 200, other answers, elapsed seconds)."""
    counts, stop = {"ok": 0, "bad": 0, "next": 0}, time.monotonic() + duration
    lock = threading.Lock()
    errors: list[bytes] = []

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < stop:
            with lock:
                position = counts["next"]
                counts["next"] += 1
            if position >= len(bodies):
                break
            conn.request("POST", "/v1/traces", body=bodies[position], headers=headers)
            response = conn.getresponse()
            content = response.read()
            with lock:
                counts["ok" if response.status == 200 else "bad"] += 1
                if response.status != 200 and len(errors) < 3:
                    errors.append(content[:300])
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=run) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        print(f"refusals: {errors}", file=sys.stderr)
    return counts["ok"], counts["bad"], time.monotonic() - started


def copy_ceiling(database_url: str, application, rows: int, batch: int,
                 connections: int) -> float:  # fmt: skip
    """Spans/s of a raw binary COPY of `rows` rows in `batch`-row transactions, from
    `connections` connections, into the same table; rows decoded from the same kind of request
    by the server's own decoder (built before the clock starts)."""
    import psycopg
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from observability.otlp.traces import spans_of
    from observability.points import IngestResult, to_us
    from observability.traces.store import COLUMNS, TABLE, copy_payload

    rng = random.Random(7)
    now_us = to_us(datetime.now(UTC))
    count = max(rows // batch, connections)
    payloads = []
    for _ in range(count):
        request = ExportTraceServiceRequest.FromString(export_body(rng, batch))
        records = spans_of(request, application=application, now_us=now_us, result=IngestResult())
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
    return count * batch / (time.monotonic() - started)


def ingestion(port: int, database_url: str, key: str, application, options: Options) -> list[str]:
    rng = random.Random(1)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    post_all(port, [export_body(rng, options.batch) for _ in range(20)], headers, 3,
             options.connections)  # warm-up  # fmt: skip
    # Enough new spans for a run at up to 60,000 spans/s (the run ends when they run out).
    per_run = max(int(60_000 * options.duration / options.batch), 20)
    rates, ceilings = [], []
    for _ in range(options.rounds):
        bodies = [export_body(rng, options.batch) for _ in range(per_run)]
        ok, bad, elapsed = post_all(port, bodies, headers, options.duration, options.connections)
        if bad:
            raise SystemExit(f"/v1/traces: {bad} requests were not answered 200")
        rates.append(ok * options.batch / elapsed)
        ceilings.append(copy_ceiling(database_url, application, ok * options.batch,
                                     options.batch, options.connections))  # fmt: skip
    rate, ceiling = median(rates), median(ceilings)
    runs = ", ".join(f"{r:,.0f}" for r in rates)
    copies = ", ".join(f"{c:,.0f}" for c in ceilings)
    return [
        f"/v1/traces (protobuf) {rate:,.0f} spans/s (runs {runs}); raw COPY {ceiling:,.0f} "
        f"spans/s (runs {copies}); ratio {ratio(rate, ceiling):.2f}"
    ]


def timed_reads(port: int, token: str, path: str, count: int) -> tuple[list[float], dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    timings, body = [], b""
    for _ in range(count):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status} {body[:300]!r}")
        timings.append((time.perf_counter() - started) * 1000)
    conn.close()
    return timings, json.loads(body)


def reads(port: int, database_url: str, token: str, count: int) -> list[str]:
    """The trace list and one trace through the API over what the ingestion left."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        spans = conn.execute("SELECT count(*) FROM observability_span").fetchone()[0]
    lines = [f"reads over {spans:,} spans of the last minutes (p50 / p95 of {count}):"]
    first = None
    for path in ("/api/traces/", "/api/traces/?status=error", "/api/traces/?min_duration_ms=900",
                 "/api/traces/?name=charge&page_size=10"):  # fmt: skip
        timings, answer = timed_reads(port, token, path, count)
        first = first or answer["results"][0]["trace_id"]
        lines.append(f"  GET {path:<40} {percentile(timings, 50):7.1f} / "
                     f"{percentile(timings, 95):7.1f} ms")  # fmt: skip
    timings, _ = timed_reads(port, token, f"/api/traces/{first}/", count)
    lines.append(f"  GET /api/traces/<id>/ ({SPANS_PER_TRACE} spans){'':<17} "
                 f"{percentile(timings, 50):7.1f} / {percentile(timings, 95):7.1f} ms")  # fmt: skip
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
            with tempfile.TemporaryDirectory(prefix="noc-bench-traces-") as tmp:
                log = Path(tmp) / "uvicorn.log"
                command = uvicorn_command("noc.asgi:application", port, options.workers)
                proc = start_process(command, env=env, log=log, cwd=BASE_DIR)
                try:
                    wait_for_http(f"http://127.0.0.1:{port}/health/live", timeout=60, proc=proc)
                    report += ingestion(port, database_url, key, application, options)
                    report += reads(port, database_url, token, options.reads)
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
    print(f"server:  uvicorn noc.asgi ×{options.workers}, {options.connections} client "
          f"connections, {options.batch} spans a request")  # fmt: skip
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
