"""Incidents: time from failing checks to an open incident (and to its webhook), and the cost of
the statistics over 100,000 incidents against a plain aggregate over the same rows.

    .venv/bin/python bench/incidents.py [--services 500] [--batch 50] [--incidents 100000]
                                        [--runs 20] [--worker-concurrency 4] [--no-webhook]

Creates a throwaway database `noc_bench_incidents` on the PostgreSQL server the project uses (the
embedded one unless DATABASE_URL is set), migrates it, and then:

(a) detection: N services fail at once. For each of `failure_threshold` rounds, every service's
    "down" result is recorded with services.actions.check_results_record in batches (as a
    worker writes them), each call timed. Incident evaluation runs inside that call's
    transaction, so in the round that crosses the threshold the call's latency *is* the time
    from recording the result to the incident row existing. Done twice: one service per call
    (per-service latency) and `--batch` services per call (what a worker does). A default
    webhook channel points at a local HTTP receiver; a real Celery worker on a private queue
    delivers, and each incident's time from its record call to the receiver is measured too.
(b) statistics: `--incidents` rows made by one INSERT … SELECT generate_series over the last
    29 days, then incidents.queries.incident_stats (default 30-day range) timed `--runs` times
    against the ceiling: one plain aggregate (count, avg MTTR) over the same rows, timed the same
    way (the two alternate, so load on the machine hits both alike).

It prints the figures and drops the database.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.common import (  # noqa: E402 - the project root must be importable first
    child_environment,
    percentile,
    ratio,
    server_version,
    start_process,
    stop_process,
    tail,
    throwaway_database,
)
from noc.demo_target import Server as BurstServer  # noqa: E402 - a listen queue for bursts

DATABASE_NAME = "noc_bench_incidents"
STATS_SERVICES = 100
WARMUP_RUNS = 3


@dataclass(frozen=True)
class Options:
    services: int
    batch: int
    incidents: int
    runs: int
    worker_concurrency: int
    webhook: bool


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=500, help="services failing at once")
    parser.add_argument("--batch", type=int, default=50, help="results per record call")
    parser.add_argument("--incidents", type=int, default=100_000, help="rows for the stats")
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each stats query")
    parser.add_argument("--worker-concurrency", type=int, default=4, help="celery processes")
    parser.add_argument("--no-webhook", action="store_true", help="skip the webhook leg")
    args = parser.parse_args(argv)
    return Options(
        services=args.services,
        batch=args.batch,
        incidents=args.incidents,
        runs=args.runs,
        worker_concurrency=args.worker_concurrency,
        webhook=not args.no_webhook,
    )


# --- the project and its database -------------------------------------------------------------


def attach_project() -> tuple[str, str]:
    """django.setup() attaches the embedded servers when no URL is set; returns both URLs."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "noc.settings")
    import django

    django.setup()
    return os.environ["DATABASE_URL"], os.environ["REDIS_URL"]


def project_environment(database_url: str, redis_url: str) -> dict[str, str]:
    return child_environment(
        DJANGO_SETTINGS_MODULE="noc.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        NOC_EMBEDDED="off",
    )


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        timeout=300,
    )


def use_database(name: str) -> None:
    """Point this process's Django connection at another database on the same server."""
    from django.db import connections

    connections["default"].close()
    connections["default"].settings_dict["NAME"] = name


def close_database() -> None:
    from django.db import connections

    connections["default"].close()


# --- (a) detection: the webhook receiver and the worker ---------------------------------------


@dataclass
class Receiver:
    """A local HTTP server that notes when each incident's webhook arrived (perf_counter)."""

    url: str
    arrivals: dict[int, float] = field(default_factory=dict)
    server: BurstServer | None = None

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.arrivals) >= count


def start_receiver() -> Receiver:
    arrivals: dict[int, float] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.perf_counter()
            payload = json.loads(body)
            if payload.get("event") == "opened" and payload.get("incident"):
                arrivals.setdefault(payload["incident"]["id"], arrived)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = BurstServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    return Receiver(url=url, arrivals=arrivals, server=server)


def route_deliveries_to(queue: str) -> None:
    """Deliveries go to a private queue, so no other worker on the shared Redis takes them."""
    from incidents.tasks import deliver

    original = deliver.apply_async

    def apply_async(args=None, kwargs=None, **options):
        return original(args=args, kwargs=kwargs, **{**options, "queue": queue})

    deliver.apply_async = apply_async


def start_worker(queue: str, env: dict[str, str], log: Path, concurrency: int):
    command = [
        sys.executable, "-m", "celery", "-A", "noc", "worker", "-Q", queue,
        "-c", str(concurrency), "-n", f"{queue}@%h", "--without-heartbeat",
        "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
    ]  # fmt: skip
    return start_process(command, env=env, log=log, cwd=BASE_DIR)


def wait_for_worker(queue: str, proc, log: Path, timeout: float = 60) -> None:
    from noc.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {proc.returncode}:\n{tail(log)}")
        if app.control.ping(destination=[f"{queue}@{os.uname().nodename}"], timeout=0.5):
            return
    raise TimeoutError(f"the worker did not answer within {timeout:.0f} s:\n{tail(log)}")


def create_webhook_channel(url: str) -> None:
    from incidents.models import NotificationChannel

    NotificationChannel.objects.create(name="bench", kind="webhook", url=url, is_default=True)


# --- (a) detection: the measurement -----------------------------------------------------------


@dataclass
class Detection:
    label: str
    services: int
    batch: int
    rounds: list[list[float]]  # seconds per record call, per round
    opened: int
    webhook_seconds: list[float] = field(default_factory=list)
    webhook_missing: int = 0


def create_services(prefix: str, count: int, tags: Sequence[str] = ()) -> list[str]:
    """`count` HTTP services in bulk (no audit rows: not what is measured); their ids."""
    from services.models import Service

    services = [
        Service(
            id=f"{prefix}-{i:05d}",
            name=f"Bench {prefix} {i}",
            url="http://127.0.0.1:9/",
            tags=list(tags),
        )
        for i in range(count)
    ]
    services[0].full_clean()  # the same fields for all: one validation says they are valid
    Service.objects.bulk_create(services, batch_size=5000)
    return [s.id for s in services]


def ensure_result_partitions() -> None:
    from noc.timeseries import partitions
    from services.timeseries import CHECK_RESULTS, ROLLUP_TABLE

    now = datetime.now(UTC)
    for spec in (CHECK_RESULTS, ROLLUP_TABLE):
        partitions.ensure(spec, now - timedelta(days=1), now + timedelta(days=1))


def record_round(ids: list[str], batch: int, due: datetime) -> tuple[list[float], dict[str, float]]:
    """Record one "down" result per service, `batch` per call; returns each call's seconds and
    when each service's call started."""
    from services.actions import Observation, check_results_record

    durations, started_at = [], {}
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        observations = [
            Observation(
                service_id=sid, due=due, started_at=due, status="down", error="connection refused"
            )
            for sid in chunk
        ]
        began = time.perf_counter()
        check_results_record(results=observations, claimed=False)
        durations.append(time.perf_counter() - began)
        started_at.update(dict.fromkeys(chunk, began))
    return durations, started_at


def measure_detection(label: str, ids: list[str], batch: int, receiver: Receiver | None):
    from incidents.models import Incident
    from services.models import Service

    threshold = Service.objects.get(pk=ids[0]).failure_threshold
    rounds, started_at = [], {}
    first_due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=threshold)
    for n in range(threshold):
        durations, started_at = record_round(ids, batch, first_due + timedelta(seconds=n))
        rounds.append(durations)
    incidents = dict(Incident.objects.filter(service_id__in=ids).values_list("pk", "service_id"))
    detection = Detection(label, len(ids), batch, rounds, opened=len(incidents))
    if receiver is not None:
        _webhook_latencies(detection, receiver, incidents, started_at)
    return detection


def _webhook_latencies(
    detection: Detection, receiver: Receiver, incidents: dict[int, str], started: dict
) -> None:
    wanted = set(incidents)
    deadline = time.monotonic() + 120
    while not wanted <= receiver.arrivals.keys() and time.monotonic() < deadline:
        time.sleep(0.05)
    for incident_id, service_id in incidents.items():
        arrived = receiver.arrivals.get(incident_id)
        if arrived is None:
            detection.webhook_missing += 1
        else:
            detection.webhook_seconds.append(arrived - started[service_id])


def run_detection(options: Options, env: dict[str, str]) -> list[Detection]:
    ensure_result_partitions()
    receiver = start_receiver() if options.webhook else None
    worker = None
    with tempfile.TemporaryDirectory(prefix="noc-bench-incidents-") as tmp:
        log = Path(tmp) / "worker.log"
        try:
            if receiver is not None:
                queue = f"notifications-bench-{uuid.uuid4().hex[:8]}"
                route_deliveries_to(queue)
                create_webhook_channel(receiver.url)
                worker = start_worker(queue, env, log, options.worker_concurrency)
                wait_for_worker(queue, worker, log)
            return [
                measure_detection(
                    "one service per call", create_services("single", options.services), 1,
                    receiver,
                ),
                measure_detection(
                    f"{options.batch} services per call",
                    create_services("batched", options.services), options.batch, receiver,
                ),
            ]  # fmt: skip
        finally:
            if worker is not None:
                stop_process(worker)
            if receiver is not None and receiver.server is not None:
                receiver.server.shutdown()


# --- (b) statistics over many incidents --------------------------------------------------------

GENERATE_INCIDENTS = """
INSERT INTO incidents_incident (
    service_id, title, summary, severity, status, source, dedup_key, impact_started_at,
    detected_at, acknowledged_at, resolved_at, closed_at, root_cause, resolution_notes,
    failed_checks, reopen_count, updated_at)
SELECT 'stats-' || lpad((g %% %(services)s)::text, 5, '0'),
       'Bench incident ' || g, '',
       (ARRAY['critical', 'high', 'medium', 'low'])[1 + g %% 4],
       CASE WHEN g %% 5 = 0 THEN 'closed' ELSE 'resolved' END,
       'check', '',
       t.detected - (g %% 7) * interval '1 minute',
       t.detected,
       CASE WHEN g %% 3 = 0 THEN NULL ELSE t.detected + (1 + g %% 29) * interval '1 minute' END,
       t.detected + (5 + g %% 180) * interval '1 minute',
       CASE WHEN g %% 5 = 0 THEN t.detected + interval '1 day' END,
       '', '', 2 + g %% 3, 0, now()
FROM generate_series(1, %(count)s) AS g,
     LATERAL (SELECT now() - interval '29 days' * g / %(count)s) AS t(detected)
"""

CEILING_SQL = """
SELECT count(*), avg(resolved_at - impact_started_at)
FROM incidents_incident WHERE detected_at >= %s AND detected_at < %s
"""


def generate_incidents(count: int) -> float:
    from django.db import connection

    create_services("stats", STATS_SERVICES, tags=["bench"])
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(GENERATE_INCIDENTS, {"services": STATS_SERVICES, "count": count})
        cursor.execute("ANALYZE incidents_incident")
    return time.perf_counter() - began


def timed_pair(
    first: Callable[[], object], second: Callable[[], object], runs: int
) -> tuple[list[float], list[float]]:
    """Both functions' durations, run alternately so that load on the machine hits both alike."""
    for _ in range(WARMUP_RUNS):
        first(), second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for function, durations in zip((first, second), samples, strict=True):
            began = time.perf_counter()
            function()
            durations.append(time.perf_counter() - began)
    return samples


@dataclass
class StatsFigures:
    incidents: int
    generate_seconds: float
    total: int
    stats: list[float]
    ceiling: list[float]


def run_stats(options: Options) -> StatsFigures:
    from django.db import connection

    from incidents.queries import incident_stats

    generated = generate_incidents(options.incidents)
    end = datetime.now(UTC)
    start = end - timedelta(days=30)

    def ceiling() -> None:
        with connection.cursor() as cursor:
            cursor.execute(CEILING_SQL, [start, end])
            cursor.fetchall()

    total = incident_stats(start=start, end=end)["total"]
    stats, plain = timed_pair(lambda: incident_stats(start=start, end=end), ceiling, options.runs)
    return StatsFigures(options.incidents, generated, total, stats, plain)


# --- the report ---------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _spread(samples: list[float]) -> str:
    if not samples:
        return "n/a"
    return (
        f"p50 {_ms(percentile(samples, 50))}, p99 {_ms(percentile(samples, 99))}, "
        f"max {_ms(max(samples))} (n={len(samples)})"
    )


def detection_lines(detection: Detection) -> list[str]:
    *before, crossing = detection.rounds
    lines = [
        f"{detection.label} ({detection.services} services, "
        f"{len(detection.rounds)} rounds to cross failure_threshold):",
        f"  record call, crossing round (→ incident):  {_spread(crossing)}",
    ]
    if before:
        lines.append(f"  record call, a round below the threshold: {_spread(before[0])}")
    per_service = [s / detection.batch for s in crossing]
    if detection.batch > 1:
        lines.append(f"  crossing round, call time / batch size:   {_spread(per_service)}")
    lines.append(f"  incidents opened: {detection.opened} of {detection.services}")
    if detection.webhook_seconds or detection.webhook_missing:
        lines.append(
            f"  record call start → webhook received:      "
            f"{_spread(detection.webhook_seconds)}; missing {detection.webhook_missing}"
        )
    return lines


def report(
    detections: list[Detection], stats: StatsFigures, options: Options, postgres: str
) -> str:
    stats_p95, ceiling_p95 = percentile(stats.stats, 95), percentile(stats.ceiling, 95)
    lines = [
        f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
        f"PostgreSQL {postgres}"
        + (f"; celery worker prefork ×{options.worker_concurrency}" if options.webhook else ""),
        "(a) failing checks → incident",
    ]
    for detection in detections:
        lines += detection_lines(detection)
    lines += [
        f"(b) statistics over {stats.incidents:,} incidents "
        f"(generated in {stats.generate_seconds:.1f} s; {stats.total:,} in the 30-day range)",
        f"  incident_stats p95:   {_ms(stats_p95)}  (p50 {_ms(percentile(stats.stats, 50))}, "
        f"{options.runs} runs)",
        f"  ceiling p95:          {_ms(ceiling_p95)}  (p50 {_ms(percentile(stats.ceiling, 50))}; "
        "one count + avg(resolved_at − impact_started_at) over the same rows)",
        f"  ratio stats/ceiling:  {ratio(stats_p95, ceiling_p95):.2f}",
    ]
    return "\n".join(lines)


def problems_of(detections: list[Detection]) -> list[str]:
    problems = []
    for d in detections:
        if d.opened != d.services:
            problems.append(f"{d.label}: {d.opened} incidents for {d.services} services")
        if d.webhook_missing:
            problems.append(f"{d.label}: {d.webhook_missing} webhooks not received")
    return problems


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    admin_url, redis_url = attach_project()
    postgres = server_version(admin_url)
    with throwaway_database(admin_url, DATABASE_NAME) as database_url:
        env = project_environment(database_url, redis_url)
        migrate(env)
        use_database(DATABASE_NAME)
        try:
            detections = run_detection(options, env)
            stats = run_stats(options)
        finally:
            close_database()  # before the database is dropped
    print(report(detections, stats, options, postgres))
    problems = problems_of(detections)
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
