"""Durable push pings per second through the real stack, against two ceilings in the same run.

    .venv/bin/python bench/pings.py [--server uvicorn|granian|gunicorn] [--workers N]
                                    [--services 1000] [--duration 15] [--connections 64]
                                    [--worker-class sync|gthread] [--threads T]
                                    [--rounds 3] [--set CONN_MAX_AGE=0 ...]

Creates a throwaway database `noc_bench_pings` on the PostgreSQL server the project uses (the
embedded one unless DATABASE_URL is set), migrates it, creates N push services, starts the web
server `make run` uses (uvicorn on `noc.asgi`, DEBUG off; `--server gunicorn` serves `noc.wsgi`
as before, `--server granian` `noc.asgi` under granian) on a free loopback port, and beside it
the minimal ASGI app of bench/asgi_ceiling.py under uvicorn (one UPDATE and a durable commit
per request through an async psycopg pool: the most Python does here). Then, alternately for
--rounds rounds, wrk with the same threads, connections and duration against: the server's
/health/live (a Django view touching no database: ceiling 1), /ping/<token> cycling over the N
tokens (the figure), and the minimal app (ceiling 2). It checks that every 2xx ping was
recorded as one check result, prints the median rates, the medians of the per-round ratios,
latency percentiles, transactions committed per ping (group commit) and the CPU each request
cost (server, PostgreSQL, wrk, and what other processes took meanwhile), then stops the
servers and drops the database. PostgreSQL commits stay durable (synchronous_commit on).
`--set KEY=VALUE` passes a setting to the server's environment (e.g. DB_POOL_MAX_SIZE=2).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.common import (  # noqa: E402 - the project root must be importable first
    CpuMeter,
    CpuUsage,
    WrkResult,
    child_environment,
    free_port,
    lua_string_list,
    median,
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
    wait_until_stable,
)

DATABASE_NAME = "noc_bench_pings"
ASGI_CEILING_WORKERS = os.cpu_count() or 1
TARGET_PER_SECOND = 2000
WARMUP_SECONDS = 2


@dataclass(frozen=True)
class Options:
    server: str
    services: int
    duration: float
    connections: int
    threads: int
    workers: int
    worker_class: str
    worker_threads: int
    rounds: int
    wait_idle: float
    settings: dict[str, str]


@dataclass
class Run:
    """One wrk run, the CPU the processes involved used meanwhile, the commits it caused."""

    wrk: WrkResult
    cpu: CpuUsage
    commits: int = 0

    def cpu_ms_per_request(self, group: str) -> float:
        seconds = self.wrk.cpu_seconds if group == "wrk" else self.cpu.groups.get(group, 0.0)
        return 1000 * seconds / max(self.wrk.requests, 1)

    def other_ms_per_request(self) -> float:
        return 1000 * self.cpu.other(self.wrk.cpu_seconds) / max(self.wrk.requests, 1)


@dataclass
class Figures:
    ceiling: list[Run] = field(default_factory=list)
    asgi_ceiling: list[Run] = field(default_factory=list)
    pings: list[Run] = field(default_factory=list)
    ping_runs: list[WrkResult] = field(default_factory=list)  # warm-up included
    recorded: int = 0  # results the measured runs recorded
    busy_before: float | None = None  # the machine's busy fraction before the first run


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server", choices=("uvicorn", "granian", "gunicorn"), default="uvicorn",
        help="uvicorn (what make run uses) or granian on noc.asgi, or gunicorn on noc.wsgi",
    )  # fmt: skip
    parser.add_argument("--services", type=int, default=1000, help="push services to ping")
    parser.add_argument("--duration", type=float, default=15, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--workers", type=int, default=None,
        help="server processes (default: cores for uvicorn/granian, 2 × cores for gunicorn)",
    )  # fmt: skip
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads (gthread)")
    parser.add_argument("--rounds", type=int, default=3, help="ceiling/pings pairs; medians")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for other work to leave the machine mostly idle",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="server environment"
    )
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    workers = args.workers or (2 * cores if args.server == "gunicorn" else cores)
    return Options(
        server=args.server,
        services=args.services,
        duration=args.duration,
        connections=args.connections,
        threads=args.wrk_threads,
        workers=workers,
        worker_class=args.worker_class,
        worker_threads=args.threads,
        rounds=args.rounds,
        wait_idle=args.wait_idle,
        settings=dict(item.split("=", 1) for item in args.set),
    )


# --- the database -----------------------------------------------------------------------------


def attach_project() -> tuple[str, str]:
    """django.setup() attaches the embedded servers when no URL is set; returns both URLs."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "noc.settings")
    import django

    django.setup()
    return os.environ["DATABASE_URL"], os.environ["REDIS_URL"]


def server_environment(database_url: str, redis_url: str, options: Options) -> dict[str, str]:
    return child_environment(
        DJANGO_SETTINGS_MODULE="noc.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        NOC_EMBEDDED="off",
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        **options.settings,
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


def create_push_services(count: int) -> list[str]:
    """`count` push services in bulk (no audit rows: not what is measured); their ping tokens."""
    from services.choices import CheckKind
    from services.models import Service

    services = [
        Service(id=f"bench-push-{i:06d}", name=f"Bench push {i}", kind=CheckKind.PUSH)
        for i in range(count)
    ]
    services[0].full_clean()  # the same fields for all: one validation says they are valid
    Service.objects.bulk_create(services, batch_size=5000)
    return [str(s.ping_token) for s in services]


def first_pings(tokens: list[str]) -> None:
    """One ping to each service before measuring, through the general path: a fleet of jobs
    that already ping is what is measured (a service's first ping, with no state yet, is
    recorded the general way, and a thousand of them at once would queue behind it)."""
    from services.actions import push_ping_record

    for token in tokens:
        push_ping_record(token=token, outcome="success")


def count_results() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM services_checkresult")
        return cursor.fetchone()[0]


def settled_result_count() -> int:
    """The count once the server has finished what wrk abandoned at its end."""
    return wait_until_stable(count_results, quiet=1.0, timeout=60)


# --- the server and the load ------------------------------------------------------------------


def server_command(port: int, options: Options) -> list[str]:
    if options.server == "gunicorn":
        command = [
            sys.executable, "-m", "gunicorn", "noc.wsgi",
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(options.workers),
            "--worker-class", options.worker_class,
            "--no-control-socket",
            "--log-level", "warning",
        ]  # fmt: skip
        if options.worker_class == "gthread":
            command += ["--threads", str(options.worker_threads)]
        return command
    if options.server == "granian":
        return [
            sys.executable, "-m", "granian", "--interface", "asgi", "noc.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(options.workers),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    return uvicorn_command("noc.asgi:application", port, options.workers)


def uvicorn_command(app: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def write_ping_script(directory: Path, tokens: list[str], threads: int) -> Path:
    """A wrk script: each wrk thread cycles over all tokens from its own offset, so threads
    do not ping the same service at the same moment."""
    script = directory / "pings.lua"
    script.write_text(
        f"local tokens = {lua_string_list(tokens)}\nlocal thread_count = {threads}\n"
        + """
local next_thread = 0
function setup(thread)
  thread:set("offset", next_thread)
  next_thread = next_thread + 1
end

local position = 0
function init(args)
  position = math.floor((offset or 0) * #tokens / thread_count)
end

function request()
  position = position + 1
  return wrk.format("GET", "/ping/" .. tokens[(position % #tokens) + 1])
end
"""
    )
    return script


def committed_transactions() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [DATABASE_NAME]
        )
        return cursor.fetchone()[0]


def metered_wrk(url: str, options: Options, server_pid: int, **kwargs) -> Run:
    meter = CpuMeter(
        {
            "server": lambda: process_tree(server_pid),
            # Backends of our database only: the server may be shared with other work.
            "postgres": lambda: processes_matching(f" {DATABASE_NAME} "),
        }
    )
    commits = committed_transactions()
    with meter:
        result = run_wrk(url, threads=options.threads, connections=options.connections, **kwargs)
    # pg_stat_database is updated when a backend reports (at most every second): let it.
    time.sleep(1.2)
    return Run(wrk=result, cpu=meter.usage, commits=committed_transactions() - commits)


def measure(urls: dict[str, str], script: Path, options: Options, pids: dict[str, int]) -> Figures:
    """Warm up, then alternate ceiling 1, pings and ceiling 2 so that load from elsewhere on
    the machine hits all three alike."""
    figures = Figures()
    before = count_results()  # the first pings, recorded in this process
    health_url = f"{urls['server']}/health/live"
    ping = partial(metered_wrk, urls["server"], options, pids["server"], script=script)
    health = partial(metered_wrk, health_url, options, pids["server"])
    asgi = partial(metered_wrk, urls["ceiling"], options, pids["ceiling"], script=script)
    health(duration=WARMUP_SECONDS)
    asgi(duration=WARMUP_SECONDS)
    figures.ping_runs.append(ping(duration=WARMUP_SECONDS).wrk)
    for _ in range(options.rounds):
        figures.ceiling.append(health(duration=options.duration))
        pings = ping(duration=options.duration)
        figures.pings.append(pings)
        figures.ping_runs.append(pings.wrk)
        figures.asgi_ceiling.append(asgi(duration=options.duration))
    figures.recorded = settled_result_count() - before
    return figures


def serve_and_measure(
    env: dict[str, str], ceiling_env: dict[str, str], tokens: list[str], options: Options
) -> Figures:
    port, ceiling_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="noc-bench-pings-") as tmp:
        log, ceiling_log = Path(tmp) / "server.log", Path(tmp) / "ceiling.log"
        server = start_process(server_command(port, options), env=env, log=log, cwd=BASE_DIR)
        ceiling = start_process(
            uvicorn_command("bench.asgi_ceiling:app", ceiling_port, ASGI_CEILING_WORKERS),
            env=ceiling_env,
            log=ceiling_log,
            cwd=BASE_DIR,
        )
        try:
            urls = {
                "server": f"http://127.0.0.1:{port}",
                "ceiling": f"http://127.0.0.1:{ceiling_port}",
            }
            wait_for_http(f"{urls['server']}/health/live", timeout=60, proc=server)
            wait_for_http(f"{urls['ceiling']}/ping/{tokens[0]}", timeout=60, proc=ceiling)
            script = write_ping_script(Path(tmp), tokens, options.threads)
            busy = wait_for_quiet_machine(timeout=options.wait_idle) if options.wait_idle else None
            figures = measure(urls, script, options, {"server": server.pid, "ceiling": ceiling.pid})
            figures.busy_before = busy
            return figures
        except Exception:
            print(f"server log:\n{tail(log)}\nceiling log:\n{tail(ceiling_log)}", file=sys.stderr)
            raise
        finally:
            stop_process(server)
            stop_process(ceiling)


# --- the report -------------------------------------------------------------------------------


def consistency_problems(figures: Figures, options: Options) -> list[str]:
    """Every 2xx ping is recorded once. A run can end with up to one request per connection
    sent but unanswered: those are recorded without being counted as OK by wrk."""
    problems = []
    non_2xx = sum(r.non_2xx_3xx for r in figures.ping_runs)
    socket_errors = sum(sum(r.socket_errors.values()) for r in figures.ping_runs)
    if non_2xx:
        problems.append(f"{non_2xx} non-2xx/3xx responses")
    if socket_errors:
        problems.append(f"{socket_errors} socket errors")
    ok = sum(r.ok_responses for r in figures.ping_runs)
    allowance = options.connections * len(figures.ping_runs)
    if not 0 <= figures.recorded - ok <= allowance:
        problems.append(
            f"{figures.recorded} results recorded for {ok} OK responses "
            f"(expected between 0 and {allowance} more)"
        )
    return problems


def _rates(runs: list[Run]) -> str:
    return ", ".join(f"{r.wrk.requests_per_second:,.0f}" for r in runs)


def _median_of(runs: list[Run], value) -> float:
    return median([value(r) for r in runs])


def _latency(runs: list[Run], q: int) -> str:
    values = [r.wrk.latency_ms[q] for r in runs if q in r.wrk.latency_ms]
    return f"{median(values):.1f} ms" if values else "n/a"


def _cpu_line(runs: list[Run], *, database: bool) -> str:
    server = _median_of(runs, lambda r: r.cpu_ms_per_request("server"))
    postgres = _median_of(runs, lambda r: r.cpu_ms_per_request("postgres"))
    wrk = _median_of(runs, lambda r: r.cpu_ms_per_request("wrk"))
    other = _median_of(runs, Run.other_ms_per_request)
    busy = _median_of(runs, lambda r: r.cpu.busy_fraction)
    # A backend that exits within a run (CONN_MAX_AGE=0) is lost to the meter: say so.
    lost = " (short-lived backends not counted)" if database and postgres < 0.01 else ""
    return (
        f"server {server:.3f}, postgres {postgres:.3f}{lost}, wrk {wrk:.3f}, "
        f"everything else {other:.3f} ms CPU a request (machine {busy:.0%} busy)"
    )


def _server_bound(runs: list[Run]) -> float:
    """Requests/s the server side could do with every core to itself: an upper bound."""
    per_request = _median_of(
        runs, lambda r: r.cpu_ms_per_request("server") + r.cpu_ms_per_request("postgres")
    )
    return (os.cpu_count() or 1) * 1000 / per_request if per_request else float("nan")


def _commits_per_request(runs: list[Run]) -> float:
    return _median_of(runs, lambda r: r.commits / max(r.wrk.requests, 1))


def describe_setup(options: Options, postgres: str, busy_before: float | None) -> list[str]:
    if options.server == "gunicorn":
        server = f"gunicorn {options.worker_class} ×{options.workers} on noc.wsgi"
        if options.worker_class == "gthread":
            server += f" ({options.worker_threads} threads)"
    else:
        server = f"{options.server} ×{options.workers} on noc.asgi"
    settings = " ".join(f"{k}={v}" for k, v in options.settings.items()) or "defaults"
    before = "" if busy_before is None else f", {busy_before:.0%} busy before the runs"
    return [
        f"machine:  {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
        f"PostgreSQL {postgres} (synchronous_commit on), load average "
        f"{os.getloadavg()[0]:.1f} at the end{before}",
        f"server:   {server}, DEBUG off, settings: {settings}",
        f"ceiling 2: bench/asgi_ceiling.py, uvicorn ×{ASGI_CEILING_WORKERS}, async psycopg pool",
        f"load:     wrk -t{options.threads} -c{options.connections} -d{options.duration:g}s "
        f"× {options.rounds} rounds; {options.services} push services",
    ]


def _ratio_to(figures: Figures, ceilings: list[Run]) -> float:
    return median(
        [
            ratio(p.wrk.requests_per_second, c.wrk.requests_per_second)
            for p, c in zip(figures.pings, ceilings, strict=True)
        ]
    )


def report(figures: Figures, options: Options, postgres: str, problems: list[str]) -> str:
    def rate(runs: list[Run]) -> float:
        return _median_of(runs, lambda r: r.wrk.requests_per_second)

    ok = sum(r.ok_responses for r in figures.ping_runs)
    lines = [
        *describe_setup(options, postgres, figures.busy_before),
        f"pings/s:           {rate(figures.pings):,.0f}  (rounds: {_rates(figures.pings)}; "
        f"target {TARGET_PER_SECOND:,}/s, durable)",
        f"ceiling 1 req/s:   {rate(figures.ceiling):,.0f}  (rounds: {_rates(figures.ceiling)}; "
        "the same server's /health/live, no database)",
        f"ceiling 2 req/s:   {rate(figures.asgi_ceiling):,.0f}  "
        f"(rounds: {_rates(figures.asgi_ceiling)}; minimal ASGI, one UPDATE + durable commit)",
        f"ratio to ceiling 1: {_ratio_to(figures, figures.ceiling):.2f}   "
        f"ratio to ceiling 2: {_ratio_to(figures, figures.asgi_ceiling):.2f}  "
        "(medians of the per-round ratios)",
        f"latency p50 / p99: {_latency(figures.pings, 50)} / {_latency(figures.pings, 99)}  "
        f"(ceiling 1 {_latency(figures.ceiling, 50)} / {_latency(figures.ceiling, 99)}, "
        f"ceiling 2 {_latency(figures.asgi_ceiling, 50)} / "
        f"{_latency(figures.asgi_ceiling, 99)})",
        f"commits per ping:  {_commits_per_request(figures.pings):.3f}  "
        f"(ceiling 2: {_commits_per_request(figures.asgi_ceiling):.3f})",
        f"CPU per ping:      {_cpu_line(figures.pings, database=True)}",
        f"CPU per ceiling 1: {_cpu_line(figures.ceiling, database=False)}",
        f"CPU per ceiling 2: {_cpu_line(figures.asgi_ceiling, database=True)}",
        f"server-side bound: {_server_bound(figures.pings):,.0f} pings/s, "
        f"{_server_bound(figures.ceiling):,.0f} ceiling 1, "
        f"{_server_bound(figures.asgi_ceiling):,.0f} ceiling 2 req/s "
        "if the server and PostgreSQL had every core",
        f"results recorded:  {figures.recorded:,} for {ok:,} OK ping responses "
        f"(warm-up included; {figures.recorded - ok} answered after wrk stopped)",
        "check:             " + ("; ".join(problems) if problems else "ok"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    admin_url, redis_url = attach_project()
    postgres = server_version(admin_url)
    with throwaway_database(admin_url, DATABASE_NAME) as database_url:
        env = server_environment(database_url, redis_url, options)
        ceiling_env = child_environment(DATABASE_URL=database_url)
        migrate(env)
        use_database(DATABASE_NAME)
        try:
            tokens = create_push_services(options.services)
            first_pings(tokens)
            figures = serve_and_measure(env, ceiling_env, tokens, options)
        finally:
            close_database()  # before the database is dropped
    problems = consistency_problems(figures, options)
    print(report(figures, options, postgres, problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
