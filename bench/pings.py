"""Push pings per second through the real stack (gunicorn, Django, PostgreSQL), against a ceiling.

    .venv/bin/python bench/pings.py [--services 1000] [--duration 15] [--connections 64]
                                    [--workers N] [--worker-class sync|gthread] [--threads T]
                                    [--rounds 3] [--set CONN_MAX_AGE=0 ...]

Creates a throwaway database `noc_bench_pings` on the PostgreSQL server the project uses (the
embedded one unless DATABASE_URL is set), migrates it, creates N push services, starts gunicorn
on a free loopback port with DEBUG off, then runs wrk twice with the same threads, connections and
duration, alternately for --rounds rounds: against /health/live (a Django view that touches no
database: the ceiling) and against /ping/<token> cycling over the N tokens (the figure). It
checks that every 2xx ping was recorded as one check result, prints the median rates, the median
of the per-round ratios, latency percentiles and the CPU each ping cost (gunicorn, PostgreSQL,
wrk, and what other processes took meanwhile), then stops gunicorn and drops the database.
`--set KEY=VALUE` passes a setting to the server's environment (e.g. DB_POOL_MAX_SIZE=2).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
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
TARGET_PER_SECOND = 2000
WARMUP_SECONDS = 2


@dataclass(frozen=True)
class Options:
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
    """One wrk run and the CPU the processes involved used meanwhile."""

    wrk: WrkResult
    cpu: CpuUsage

    def cpu_ms_per_request(self, group: str) -> float:
        seconds = self.wrk.cpu_seconds if group == "wrk" else self.cpu.groups[group]
        return 1000 * seconds / max(self.wrk.requests, 1)

    def other_ms_per_request(self) -> float:
        return 1000 * self.cpu.other(self.wrk.cpu_seconds) / max(self.wrk.requests, 1)


@dataclass
class Figures:
    ceiling: list[Run] = field(default_factory=list)
    pings: list[Run] = field(default_factory=list)
    ping_runs: list[WrkResult] = field(default_factory=list)  # warm-up included
    recorded: int = 0
    busy_before: float | None = None  # the machine's busy fraction before the first run


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000, help="push services to ping")
    parser.add_argument("--duration", type=float, default=15, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
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
    return Options(
        services=args.services,
        duration=args.duration,
        connections=args.connections,
        threads=args.wrk_threads,
        workers=args.workers,
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


def count_results() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM services_checkresult")
        return cursor.fetchone()[0]


def settled_result_count() -> int:
    """The count once the server has finished what wrk abandoned at its end."""
    return wait_until_stable(count_results, quiet=1.0, timeout=60)


# --- the server and the load ------------------------------------------------------------------


def gunicorn_command(port: int, options: Options) -> list[str]:
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


def metered_wrk(url: str, options: Options, gunicorn_pid: int, **kwargs) -> Run:
    meter = CpuMeter(
        {
            "gunicorn": lambda: process_tree(gunicorn_pid),
            # Backends of our database only: the server may be shared with other work.
            "postgres": lambda: processes_matching(f" {DATABASE_NAME} "),
        }
    )
    with meter:
        result = run_wrk(url, threads=options.threads, connections=options.connections, **kwargs)
    return Run(wrk=result, cpu=meter.usage)


def measure(base_url: str, script: Path, options: Options, gunicorn_pid: int) -> Figures:
    """Warm up both endpoints, then alternate ceiling and pings so that load from elsewhere
    on the machine hits both alike."""
    figures = Figures()
    ceiling_url = f"{base_url}/health/live"
    metered_wrk(ceiling_url, options, gunicorn_pid, duration=WARMUP_SECONDS)
    warmup = metered_wrk(base_url, options, gunicorn_pid, duration=WARMUP_SECONDS, script=script)
    figures.ping_runs.append(warmup.wrk)
    for _ in range(options.rounds):
        figures.ceiling.append(
            metered_wrk(ceiling_url, options, gunicorn_pid, duration=options.duration)
        )
        pings = metered_wrk(
            base_url, options, gunicorn_pid, duration=options.duration, script=script
        )
        figures.pings.append(pings)
        figures.ping_runs.append(pings.wrk)
    figures.recorded = settled_result_count()
    return figures


def serve_and_measure(env: dict[str, str], tokens: list[str], options: Options) -> Figures:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="noc-bench-pings-") as tmp:
        log = Path(tmp) / "gunicorn.log"
        proc = start_process(gunicorn_command(port, options), env=env, log=log, cwd=BASE_DIR)
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base_url}/health/live", timeout=60, proc=proc)
            script = write_ping_script(Path(tmp), tokens, options.threads)
            busy = wait_for_quiet_machine(timeout=options.wait_idle) if options.wait_idle else None
            figures = measure(base_url, script, options, proc.pid)
            figures.busy_before = busy
            return figures
        except Exception:
            print(f"gunicorn log:\n{tail(log)}", file=sys.stderr)
            raise
        finally:
            stop_process(proc)


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
    gunicorn = _median_of(runs, lambda r: r.cpu_ms_per_request("gunicorn"))
    postgres = _median_of(runs, lambda r: r.cpu_ms_per_request("postgres"))
    wrk = _median_of(runs, lambda r: r.cpu_ms_per_request("wrk"))
    other = _median_of(runs, Run.other_ms_per_request)
    busy = _median_of(runs, lambda r: r.cpu.busy_fraction)
    # A backend that exits within a run (CONN_MAX_AGE=0) is lost to the meter: say so.
    lost = " (short-lived backends not counted)" if database and postgres < 0.01 else ""
    return (
        f"gunicorn {gunicorn:.2f}, postgres {postgres:.2f}{lost}, wrk {wrk:.2f}, "
        f"everything else {other:.2f} ms CPU a request (machine {busy:.0%} busy)"
    )


def _server_bound(runs: list[Run]) -> float:
    """Requests/s the server side could do with every core to itself: an upper bound."""
    per_request = _median_of(
        runs, lambda r: r.cpu_ms_per_request("gunicorn") + r.cpu_ms_per_request("postgres")
    )
    return (os.cpu_count() or 1) * 1000 / per_request if per_request else float("nan")


def describe_setup(options: Options, postgres: str, busy_before: float | None) -> list[str]:
    server = f"gunicorn {options.worker_class} ×{options.workers}"
    if options.worker_class == "gthread":
        server += f" ({options.worker_threads} threads)"
    settings = " ".join(f"{k}={v}" for k, v in options.settings.items()) or "defaults"
    before = "" if busy_before is None else f", {busy_before:.0%} busy before the runs"
    return [
        f"machine:  {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), "
        f"PostgreSQL {postgres}, load average {os.getloadavg()[0]:.1f} at the end{before}",
        f"server:   {server}, DEBUG off, settings: {settings}",
        f"load:     wrk -t{options.threads} -c{options.connections} -d{options.duration:g}s "
        f"× {options.rounds} rounds; {options.services} push services",
    ]


def report(figures: Figures, options: Options, postgres: str, problems: list[str]) -> str:
    pings = _median_of(figures.pings, lambda r: r.wrk.requests_per_second)
    ceiling = _median_of(figures.ceiling, lambda r: r.wrk.requests_per_second)
    ratios = [
        ratio(p.wrk.requests_per_second, c.wrk.requests_per_second)
        for p, c in zip(figures.pings, figures.ceiling, strict=True)
    ]
    ok = sum(r.ok_responses for r in figures.ping_runs)
    lines = [
        *describe_setup(options, postgres, figures.busy_before),
        f"pings/s:           {pings:,.0f}  (rounds: {_rates(figures.pings)}; "
        f"target {TARGET_PER_SECOND:,}/s)",
        f"ceiling req/s:     {ceiling:,.0f}  (rounds: {_rates(figures.ceiling)}; "
        "/health/live, no database)",
        f"ratio:             {median(ratios):.2f}  (median of the per-round ratios)",
        f"latency p50 / p99: {_latency(figures.pings, 50)} / {_latency(figures.pings, 99)}  "
        f"(ceiling {_latency(figures.ceiling, 50)} / {_latency(figures.ceiling, 99)})",
        f"CPU per ping:      {_cpu_line(figures.pings, database=True)}",
        f"CPU per ceiling:   {_cpu_line(figures.ceiling, database=False)}",
        f"server-side bound: {_server_bound(figures.pings):,.0f} pings/s, "
        f"{_server_bound(figures.ceiling):,.0f} ceiling req/s if gunicorn and PostgreSQL "
        "had every core",
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
        migrate(env)
        use_database(DATABASE_NAME)
        try:
            tokens = create_push_services(options.services)
            figures = serve_and_measure(env, tokens, options)
        finally:
            close_database()  # before the database is dropped
    problems = consistency_problems(figures, options)
    print(report(figures, options, postgres, problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
