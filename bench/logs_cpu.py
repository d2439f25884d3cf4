"""Instructions of the web process per log line, counted by callgrind: a figure the shared
machine's load does not move (CPU time moved by a fifth between identical runs).

    .venv/bin/python bench/logs_cpu.py [--requests 5] [--batch 1000]

Creates a throwaway database `noc_bench_logs_cpu` on the PostgreSQL server the project uses
(the embedded one unless DATABASE_URL is set) and migrates it; then, for `POST /v1/logs`
(protobuf, as bench/logs.py posts it) and `POST /api/logs/ingest` (gzipped JSON), runs a child
Python under `valgrind --tool=callgrind` that posts `--requests` requests of `--batch` lines
through Django's test client (after three warm-up requests) and counts the instructions of
those requests only (callgrind collects inside `functools.reduce`, which runs them). The
ceiling is the same child's decoding of the same bodies alone (protobuf's ParseFromString;
gunzip and json.loads): what any receiver must spend. PostgreSQL's side is not counted here
(bench/logs.py reports its CPU per line).

It prints instructions per line, the ratio to the decoding alone, and drops the database.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

DATABASE_NAME = "noc_bench_logs_cpu"
ENDPOINTS = ("/v1/logs", "/api/logs/ingest")
CHILDREN = (*ENDPOINTS, *(f"decode {path}" for path in ENDPOINTS))


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5, help="requests counted")
    parser.add_argument("--batch", type=int, default=1000, help="lines per request")
    parser.add_argument("--child", choices=CHILDREN, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def bodies(path: str, batch: int) -> tuple[list[bytes], str, dict]:
    import random

    from bench.logs import json_body, otlp_body

    rng = random.Random(1)
    if path == "/v1/logs":
        return [otlp_body(rng, batch) for _ in range(4)], "application/x-protobuf", {}
    return ([json_body(rng, batch) for _ in range(4)], "application/json",
            {"HTTP_CONTENT_ENCODING": "gzip"})  # fmt: skip


def child(options: argparse.Namespace) -> None:
    """Runs under callgrind: what is inside functools.reduce is counted."""
    decode_only = options.child.startswith("decode ")
    if not decode_only:
        import django

        django.setup()
    path = options.child.removeprefix("decode ")
    posted, content_type, headers = bodies(path, options.batch)
    if decode_only:
        import gzip
        import json

        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        def step(_, i):
            body = posted[i % len(posted)]
            if path == "/v1/logs":
                ExportLogsServiceRequest().ParseFromString(body)
            else:
                json.loads(gzip.decompress(body))

    else:
        import uuid

        from django.test import Client

        from observability import actions

        slug = f"cpu-{uuid.uuid4().hex[:8]}"
        _, _, key = actions.application_create(actor=None, slug=slug, name="CPU")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

        def step(_, i):
            response = client.generic("POST", path, posted[i % len(posted)],
                                      content_type=content_type, **headers)  # fmt: skip
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.content[:200]!r}")

    for i in range(3):
        step(None, i)
    functools.reduce(step, range(options.requests), None)


def counted(what: str, options: argparse.Namespace, env: dict) -> int:
    """Instructions callgrind counted inside functools.reduce of a child run."""
    out = Path(env["NOC_BENCH_TMP"]) / "callgrind.out"
    command = [
        "valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
        f"--callgrind-out-file={out}", sys.executable, __file__, "--child", what,
        "--requests", str(options.requests), "--batch", str(options.batch),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=BASE_DIR, capture_output=True, text=True,
                          timeout=3600)  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{what}: callgrind run failed\n{done.stderr[-3000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    import tempfile

    options = parse_options(argv)
    if options.child:
        child(options)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    from bench.common import ingest_server_environment, throwaway_database
    from bench.pings import attach_project, migrate

    admin_url, redis_url = attach_project()
    lines = options.requests * options.batch
    report = []
    with (
        throwaway_database(admin_url, DATABASE_NAME) as database_url,
        tempfile.TemporaryDirectory(prefix="noc-bench-logs-cpu-") as tmp,
    ):
        env = {**ingest_server_environment(database_url, redis_url),
               "ALLOWED_HOSTS": "testserver", "NOC_BENCH_TMP": tmp}  # fmt: skip
        migrate(env)
        for path in ENDPOINTS:
            request = counted(path, options, env)
            ceiling = counted(f"decode {path}", options, env)
            report.append(
                f"{path:<18} {request / lines:>9,.0f} instructions a line in the web process; "
                f"decoding alone {ceiling / lines:,.0f}; ratio {ceiling / request:.2f}"
            )
    print()
    print(f"machine: {os.cpu_count()} cores; {options.requests} requests of {options.batch} "
          f"lines each, through Django's test client (callgrind)")  # fmt: skip
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
