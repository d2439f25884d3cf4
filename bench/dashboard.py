"""The console's pages under load: the dashboard, a service page and the status page.

    .venv/bin/python bench/dashboard.py [--services 2000] [--incidents 100] [--slos 500]
                                        [--days 30] [--duration 10] [--connections 4]
                                        [--rounds 2] [--workers 2]

Creates a throwaway database `noc_bench_dashboard` on the PostgreSQL server the project uses
(the embedded one unless DATABASE_URL is set), migrates it, and fills it as a NOC of that size
looks: `--services` enabled HTTP services (tags, 10 % critical, 5 % internal; `--incidents` of
them down with an active incident each, 2 % degraded), `--days` of hourly rollups for every
service (COPY) and the last hours of minute rollups (bench/slos.py's generator), the last 100
checks of each failing service, 300 resolved incidents of the last 30 days (MTTA/MTTR), and
`--slos` SLOs (bench/slos.py's mix) of which one in eight is at risk.

Then it starts the web server `make run` starts (uvicorn on `noc.asgi`, `--workers`, DEBUG
off) on a free loopback port, signs a viewer in (a session cookie), checks each page answers
200 with its content, and runs `wrk` alternately for `--rounds` rounds against: /health/live
(the ceiling: a Django view that touches no database, on the same server), `/`, the page of
a failing service, and `/status/` (which the site caches for 30 s: what visitors get; the
bench process renders it ahead every 20 s as beat's `web.status_page_refresh` does on a worker
under `make run`). The status page is also rendered cold by the server (its cache entry
deleted before each of 20 requests, one at a time). It prints p50/p90/p95/p99 (wrk's own
histogram), requests per second and their ratio to the ceiling, server and PostgreSQL CPU per
request, then stops the server and drops the database. Goal: p95 under 150 ms for each page.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.checks import base_urls, private_redis  # noqa: E402 - the project root first
from bench.common import (  # noqa: E402
    CpuMeter,
    child_environment,
    free_port,
    median,
    percentile,
    process_tree,
    processes_matching,
    ratio,
    run_wrk,
    server_version,
    start_process,
    stop_process,
    tail,
    throwaway_database,
    wait_for_http,
    wait_for_quiet_machine,
)
from bench.slos import (  # noqa: E402
    close_database,
    generate_history,
    service_id,
    setup_project,
    slo_fields,
)

DATABASE_NAME = "noc_bench_dashboard"
GOAL_P95_MS = 150.0
PERCENTILES = (50, 90, 95, 99)
TAGS = ("edge", "core", "payments", "search", "db", "eu", "us")
# wrk: the viewer's session on every request, the encodings a browser accepts, and the
# latency percentiles its report lacks.
WRK_SCRIPT = """
wrk.headers["Cookie"] = "sessionid={session}"
wrk.headers["Accept-Encoding"] = "gzip, deflate, br"
done = function(summary, latency, requests)
  for _, p in ipairs({{{percentiles}}}) do
    io.write(string.format("P%d %d\\n", p, latency:percentile(p)))
  end
end
"""


@dataclass(frozen=True)
class Options:
    services: int
    incidents: int
    slos: int
    days: int
    duration: float
    connections: int
    rounds: int
    workers: int
    wait_idle: float
    explain_only: bool = False


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--incidents", type=int, default=100, help="active incidents")
    parser.add_argument("--slos", type=int, default=500)
    parser.add_argument("--days", type=int, default=30, help="days of hourly rollups")
    parser.add_argument("--duration", type=float, default=10, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (make run: 2)")
    parser.add_argument(
        "--explain-only", action="store_true",
        help="render each page once in this process (queries, time, size; the dashboard also "
        "with nothing kept in the cache) and stop",
    )  # fmt: skip
    parser.add_argument(
        "--wait-idle", type=float, default=60, metavar="SECONDS",
        help="wait up to this long for a mostly idle machine before measuring",
    )  # fmt: skip
    a = parser.parse_args(argv)
    return Options(
        services=a.services, incidents=a.incidents, slos=a.slos, days=a.days,
        duration=a.duration, connections=a.connections, rounds=a.rounds, workers=a.workers,
        wait_idle=a.wait_idle, explain_only=a.explain_only,
    )  # fmt: skip


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the data ---------------------------------------------------------------------------------


def create_services(options: Options) -> None:
    """Enabled services (no dispatcher runs here: nothing checks them); the first
    `--incidents` down, then 2 % degraded, the rest up."""
    from django.utils import timezone

    from services.models import Service

    rng = random.Random(15)
    now = timezone.now()
    services = []
    for i in range(1, options.services + 1):
        down = i <= options.incidents
        degraded = not down and i % 50 == 0
        tags = rng.sample(TAGS, 2) + (["internal"] if i % 20 == 7 else [])
        services.append(
            Service(
                id=service_id(i), name=f"bench {i}", kind="http", url="http://127.0.0.1:9/",
                interval_seconds=60, enabled=True, critical=i % 10 == 3, tags=tags,
                status="down" if down else "degraded" if degraded else "up",
                last_checked_at=now - timedelta(seconds=rng.randint(0, 59)),
                last_response_time_ms=None if down else 30 + (i * 37) % 250,
                last_error="HTTP 503 Service Unavailable" if down else "",
            )
        )  # fmt: skip
    Service.objects.bulk_create(services, batch_size=2000)


def create_failing_checks(options: Options) -> None:
    """The last 100 one-minute checks of each failing service (its heartbeat bar, evidence)."""
    from django.utils import timezone

    from services.models import CheckResult
    from services.tests.fixtures import ensure_partitions
    from services.timeseries import CHECK_RESULTS

    now = timezone.now().replace(second=0, microsecond=0)
    ensure_partitions(CHECK_RESULTS, now - timedelta(hours=3), now + timedelta(hours=1))
    rows = [
        CheckResult(
            service_id=service_id(i), time=now - timedelta(minutes=m), started_at=now,
            status="down" if m < 20 else "up", status_code=503 if m < 20 else 200,
            response_time_ms=None if m < 20 else 80.0,
            error="HTTP 503 Service Unavailable" if m < 20 else "",
        )
        for i in range(1, options.incidents + 1)
        for m in range(100)
    ]  # fmt: skip
    CheckResult.objects.bulk_create(rows, batch_size=5000)


def create_incidents(options: Options) -> None:
    """An active incident on each down service (half acknowledged), and 300 resolved ones of
    the last 30 days, through the incident actions (timeline, audit)."""
    from django.utils import timezone

    from accounts.actions import user_create
    from incidents import actions
    from incidents.models import Incident
    from services.models import Service

    operator = user_create(
        actor=None, username="bench-operator", email="op@example.test", role="operator",
        password="bench password 1",
    )  # fmt: skip
    services = {s.pk: s for s in Service.objects.all()}
    severities = ("critical", "high", "medium", "low")
    for i in range(1, options.incidents + 1):
        incident = actions.incident_create_manual(
            actor=None, service=services[service_id(i)], title=f"bench {i} is down",
            severity=severities[i % 4], summary="HTTP 503 Service Unavailable",
        )  # fmt: skip
        if i % 2:
            actions.incident_acknowledge(incident=incident, actor=operator)
    rng = random.Random(16)
    now = timezone.now()
    for n in range(300):
        service = services[
            service_id(options.incidents + 1 + n % (options.services - options.incidents))
        ]
        incident = actions.incident_create_manual(
            actor=None, service=service, title=f"{service.name} was down", severity="medium"
        )
        actions.incident_acknowledge(incident=incident, actor=operator)
        actions.incident_resolve(incident=incident, actor=operator)
        started = now - timedelta(minutes=rng.randint(60, 30 * 24 * 60))
        Incident.objects.filter(pk=incident.pk).update(
            impact_started_at=started, detected_at=started,
            acknowledged_at=started + timedelta(minutes=rng.randint(1, 30)),
            resolved_at=started + timedelta(minutes=rng.randint(31, 240)),
        )  # fmt: skip


def create_slos(options: Options) -> None:
    """`--slos` SLOs, one per service from the first, as evaluated: one in eight at risk."""
    from decimal import Decimal

    from django.utils import timezone

    from slos.models import SLO

    now = timezone.now()
    risks = ("medium", "high", "critical")
    slos = []
    for i in range(1, options.slos + 1):
        fields = dict(slo_fields(i, options.slos))
        fields["target"] = Decimal(fields["target"])
        at_risk = i % 8 == 1
        slos.append(
            SLO(
                id=f"slo-{i:06d}", name=f"bench SLO {i}", service_id=service_id(i),
                current_value=99.2 if at_risk else 99.97, compliant=not at_risk,
                budget_total_minutes=43.2, budget_remaining_minutes=4.1 if at_risk else 30.5,
                budget_used_minutes=39.1 if at_risk else 12.7,
                budget_remaining_percent=9.5 if at_risk else 70.6,
                burn_rate=6.5 if at_risk else 0.4,
                violation_risk=risks[i % 3] if at_risk else "none", calculated_at=now,
                **fields,
            )
        )  # fmt: skip
    SLO.objects.bulk_create(slos, batch_size=2000)


def populate(options: Options) -> dict[str, float]:
    from django.db import connection
    from django.utils import timezone

    seconds = {}
    for name, step in (
        ("services", lambda: create_services(options)),
        ("rollups", lambda: generate_history(
            options.services, timezone.now() - timedelta(days=options.days), timezone.now(),
            all_minutes=False,
        )),
        ("failing checks", lambda: create_failing_checks(options)),
        ("incidents", lambda: create_incidents(options)),
        ("SLOs", lambda: create_slos(options)),
    ):  # fmt: skip
        began = time.perf_counter()
        log(f"creating {name} …")
        step()
        seconds[name] = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return seconds


def viewer_session() -> str:
    """A signed-in viewer's session key (the session store is the database the server reads)."""
    from django.test import Client

    from accounts.actions import user_create

    viewer = user_create(
        actor=None, username="bench-viewer", email="v@example.test", role="viewer",
        password="bench password 1",
    )  # fmt: skip
    client = Client()
    client.force_login(viewer)
    return client.cookies["sessionid"].value


def slowest_queries(session: str, paths: dict[str, str], top: int = 3) -> dict[str, list[str]]:
    """Each page rendered once in this process: its query count, total time, and its
    slowest queries (where the time goes)."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from noc.cachekeys import delete_prefixed
    from web.views.status import STATUS_PAGE_CACHE_KEY

    client = Client()
    client.cookies["sessionid"] = session
    found = {}
    for name, path in {**paths, "dashboard, nothing kept": paths["dashboard"]}.items():
        client.get(path)  # warm
        if name == "status":
            cache.delete(STATUS_PAGE_CACHE_KEY)  # rendered, not read from the cache
        elif name.endswith("nothing kept"):
            delete_prefixed()  # what the dashboard keeps a minute, read again (this bench's keys)
        began = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        total = 1000 * (time.perf_counter() - began)
        ranked = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:top]
        size = len(response.content)
        found[name] = [f"{len(queries)} queries, {total:.0f} ms in all, {size:,} bytes"] + [
            f"{1000 * float(q['time']):.0f} ms: {q['sql'][:160]}" for q in ranked
        ]
    return found


# --- the load ---------------------------------------------------------------------------------


@dataclass
class PageFigures:
    path: str
    p: dict[int, list[float]] = field(default_factory=lambda: {q: [] for q in PERCENTILES})
    rates: list[float] = field(default_factory=list)
    server_cpu_ms: list[float] = field(default_factory=list)  # per request
    postgres_cpu_ms: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)  # the machine's busy fraction meanwhile
    errors: int = 0


def get(url: str, session: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={session}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read().decode()


def check_pages(base: str, pages: dict[str, str], session: str) -> None:
    """Each page answers 200 with what it is about (a redirect to the login page would be a
    3xx that wrk counts as a success)."""
    expected = {"dashboard": "Active incidents", "service": "bench 1", "status": "bench 2"}
    for name, path in pages.items():
        status, body = get(base + path, session)
        if status != 200 or expected.get(name, "") not in body:
            raise SystemExit(f"{name} ({path}) answered {status} without the expected content")


def wrk_once(
    base: str, path: str, script: Path, options: Options, figures: PageFigures, server_pid: int
) -> None:
    meter = CpuMeter(
        {
            "server": lambda: process_tree(server_pid),
            "postgres": lambda: processes_matching(f" {DATABASE_NAME} "),
        }
    )
    with meter:
        result = run_wrk(
            base + path, threads=min(2, options.connections), connections=options.connections,
            duration=options.duration, script=script, timeout_seconds=10,
        )  # fmt: skip
    requests = max(result.requests, 1)
    figures.server_cpu_ms.append(1000 * meter.usage.groups["server"] / requests)
    figures.postgres_cpu_ms.append(1000 * meter.usage.groups["postgres"] / requests)
    figures.busy.append(meter.usage.busy_fraction)
    for line in result.output.splitlines():
        if line.startswith("P") and " " in line:
            q, micros = line[1:].split()
            figures.p[int(q)].append(int(micros) / 1000)
    figures.rates.append(result.requests_per_second)
    figures.errors += result.non_2xx_3xx + sum(result.socket_errors.values())


def cold_status_renders(base: str, count: int = 20) -> list[float]:
    """The status page rendered from the database: its cache entry deleted before each GET."""
    from django.core.cache import cache

    from web.views.status import STATUS_PAGE_CACHE_KEY

    timings = []
    for _ in range(count):
        cache.delete(STATUS_PAGE_CACHE_KEY)
        began = time.perf_counter()
        get(base + "/status/", "")
        timings.append(1000 * (time.perf_counter() - began))
    return timings


class StatusPageRenderer(threading.Thread):
    """What beat and a worker do under `make run`: the status page rendered into the cache
    every STATUS_PAGE_REFRESH_SECONDS (web.status_page_refresh), here by this process."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopped = threading.Event()
        self.renders: list[float] = []

    def run(self) -> None:
        from django.db import connection

        from web.views.status import STATUS_PAGE_REFRESH_SECONDS, status_page_refresh

        try:
            while not self.stopped.is_set():
                began = time.perf_counter()
                if status_page_refresh():  # 0: nobody had opened the page yet, not rendered
                    self.renders.append(1000 * (time.perf_counter() - began))
                self.stopped.wait(STATUS_PAGE_REFRESH_SECONDS)
        finally:
            connection.close()


def measure(base: str, session: str, options: Options, tmp: Path, server_pid: int) -> dict:
    script = tmp / "session.lua"
    script.write_text(
        WRK_SCRIPT.format(session=session, percentiles=", ".join(map(str, PERCENTILES)))
    )
    pages = {
        "ceiling": "/health/live",
        "dashboard": "/",
        "service": f"/services/{service_id(1)}/",
        "status": "/status/",
    }
    check_pages(base, pages, session)
    figures = {name: PageFigures(path) for name, path in pages.items()}
    warm_up = Options(**{**options.__dict__, "duration": 2})
    for path in pages.values():  # every worker's connections and caches
        wrk_once(base, path, script, warm_up, PageFigures(path), server_pid)
    busy = wait_for_quiet_machine(timeout=options.wait_idle) if options.wait_idle else None
    renderer = StatusPageRenderer()
    renderer.start()
    try:
        for round_ in range(1, options.rounds + 1):
            for name, path in pages.items():
                log(f"round {round_}: {name} …")
                wrk_once(base, path, script, options, figures[name], server_pid)
    finally:
        renderer.stopped.set()
        renderer.join()
    return {
        "pages": figures, "cold_status": cold_status_renders(base), "busy": busy,
        "beat_renders": renderer.renders,
    }  # fmt: skip


def serve_and_measure(database_url: str, redis_url: str, options: Options) -> dict:
    port = free_port()
    env = child_environment(
        DJANGO_SETTINGS_MODULE="noc.settings", DATABASE_URL=database_url, REDIS_URL=redis_url,
        NOC_EMBEDDED="off", DEBUG="false", ALLOWED_HOSTS="127.0.0.1",
    )  # fmt: skip
    command = [
        sys.executable, "-m", "uvicorn", "noc.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(options.workers), "--loop", "uvloop",
        "--http", "httptools", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    session = viewer_session()
    pages = {"dashboard": "/", "service": f"/services/{service_id(1)}/", "status": "/status/"}
    for name, lines in slowest_queries(session, pages).items():
        log(f"{name}: " + "\n    ".join(lines))
    if options.explain_only:
        raise SystemExit(0)
    with tempfile.TemporaryDirectory(prefix="noc-bench-dashboard-") as tmp:
        log_path = Path(tmp) / "server.log"
        server = start_process(command, env=env, log=log_path, cwd=BASE_DIR)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base}/health/live", timeout=60, proc=server)
            return measure(base, session, options, Path(tmp), server.pid)
        except Exception:
            print(f"server log:\n{tail(log_path)}", file=sys.stderr)
            raise
        finally:
            stop_process(server)


# --- the report -------------------------------------------------------------------------------


def report(figures: dict, seconds: dict[str, float], options: Options, version: str) -> None:
    pages: dict[str, PageFigures] = figures["pages"]
    ceiling = median(pages["ceiling"].rates)
    print(
        f"\nbench/dashboard.py: {options.services:,} services, {options.incidents} active "
        f"incidents, {options.slos} SLOs, {options.days} days of hourly rollups; PostgreSQL "
        f"{version}; uvicorn noc.asgi ×{options.workers}; wrk {options.connections} connections,"
        f" {options.duration:g} s × {options.rounds} rounds per page"
    )
    busy = figures["busy"]
    if busy is not None:
        print(f"machine busy before measuring: {100 * busy:.0f} % of its CPU taken by others")
    print("data generated in " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    print(
        "\n| page | p50 ms | p90 ms | p95 ms | p99 ms | req/s | ratio to /health/live "
        f"| server CPU ms/req | PostgreSQL CPU ms/req | machine busy | p95 < {GOAL_P95_MS:g} ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, page in pages.items():
        p = {q: median(values) for q, values in page.p.items()}
        rate = median(page.rates)
        goal = "—" if name == "ceiling" else ("yes" if p[95] < GOAL_P95_MS else "**no**")
        print(
            f"| {name} `{page.path}` | {p[50]:.1f} | {p[90]:.1f} | {p[95]:.1f} | {p[99]:.1f} | "
            f"{rate:,.0f} | {ratio(rate, ceiling):.3f} | {median(page.server_cpu_ms):.1f} | "
            f"{median(page.postgres_cpu_ms):.1f} | {100 * median(page.busy):.0f} % | {goal} |"
        )
        if page.errors:
            print(f"|   {page.errors} non-2xx/3xx answers or socket errors | | | | | | | |")
    beat = figures["beat_renders"]
    print(
        f"\nstatus page rendered ahead (as beat's web.status_page_refresh does on a worker; "
        f"here by the bench process, not the server): {len(beat)} renders, "
        f"median {median(beat):.0f} ms"
    )
    cold = figures["cold_status"]
    print(
        f"\nstatus page rendered cold (cache entry deleted, one request at a time, "
        f"{len(cold)} requests): p50 {percentile(cold, 50):.1f} ms, "
        f"p95 {percentile(cold, 95):.1f} ms, max {max(cold):.1f} ms"
    )


def main() -> None:
    options = parse_options()
    database, redis = base_urls()
    with throwaway_database(database, DATABASE_NAME) as url:
        redis_url = private_redis(redis)
        try:
            setup_project(url, redis_url)
            seconds = populate(options)
            figures = serve_and_measure(url, redis_url, options)
        finally:
            close_database()
        report(figures, seconds, options, server_version(url))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "noc.settings")
    main()
