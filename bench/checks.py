"""Check engine throughput and schedule lag through the real dispatcher, worker and PostgreSQL.

    .venv/bin/python bench/checks.py [--services 20000] [--interval 60] [--duration 180]
                                     [--burst 1000] [--concurrency N] [--task-log]

What runs: nginx (Debian's nginx-light) serves a tiny response on loopback; N HTTP services
check it every `interval` seconds with due times spread over the interval; Celery beat
dispatches every second (services.dispatch) and `make run`'s two Celery workers run the rest:
the scheduled work's (dispatch, batches; `concurrency` processes, NOC_WORKER_CONCURRENCY by
default) and the jobs' (rollups, maintenance), all against a throwaway database on the
project's PostgreSQL. Reported:

- burst: `burst` services due at the same instant (the rest disabled): time until all are
  recorded, lag p50/p99 (actual start − due time);
- sustained: checks/s recorded over the steady part of the run, lag p50/p99, failures;
- ceiling: wrk with as many connections as a batch runs at once, against the same nginx, in
  the same run. The required rate is services / interval; the ratio to the ceiling says how
  much of the HTTP path's capacity the whole pipeline (dispatch, check, write) reaches;
- the aiohttp client's own rate against the same nginx (the client the worker uses, with as
  many concurrent keep-alive requests as a batch runs, on the event loop the worker uses);
- where the CPU goes, per check recorded in the sustained window: by process (worker, beat,
  Redis, our PostgreSQL backends, nginx), and the worker's own CPU split into stages
  (dispatcher, broker, HTTP client, result writes, incident evaluation, other) from py-spy
  samples of the worker's processes taken with --gil (threads holding the GIL, i.e. running
  Python); the dispatcher's share of PostgreSQL and all of Redis are reported apart;
- resident memory (RSS) of the workers (all their processes) and beat at the start and the end
  of the sustained window;
- the start lag by 10-second window of due times (is the tail spread or in bursts), and with
  --task-log every task the workers ran (bench/task_timing.py): how long each kind held a
  process, and the long ones around the worst windows.

py-spy is optional (`pip install py-spy`): without it the stage split is skipped.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    child_environment,
    free_port,
    make_run_celery,
    percentile,
    ratio,
    run_wrk,
    server_version,
    start_process,
    stop_process,
    tail,
    throwaway_database,
    wait_for_http,
)

BASE_DIR = Path(__file__).resolve().parent.parent
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=20_000)
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--duration", type=int, default=180, help="seconds of sustained load")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument(
        "--concurrency", type=int, default=None,
        help="processes of the scheduled work's worker (default: as make run, "
        "NOC_WORKER_CONCURRENCY)",
    )  # fmt: skip
    parser.add_argument(
        "--task-log",
        action="store_true",
        help="log every task the worker runs (INFO) and report how long each kind held a process",
    )
    parser.add_argument(
        "--profile-seconds", type=int, default=60,
        help="seconds of the sustained window the worker is sampled by py-spy (0: none)",
    )  # fmt: skip
    return parser.parse_args()


def base_urls() -> tuple[str, str]:
    """The project's PostgreSQL and Redis: configured ones, or the embedded servers."""
    from noc.embedded import EmbeddedServices

    database, redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not (database and redis):
        urls = EmbeddedServices().attach(postgres=not database, redis=not redis)
        database, redis = database or urls.database_url, redis or urls.redis_url
    return database, redis


def private_redis(url: str) -> str:
    """Another Redis database, so queues left by other runs cannot interfere. (Importing
    noc.settings here would load the settings before DATABASE_URL points at the bench.)"""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}?db=9"
    return urlunsplit(parts._replace(path="/9"))


def start_nginx(tmp: Path) -> tuple[object, int]:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
    proc = start_process(
        ["/usr/sbin/nginx", "-c", str(conf)], env=dict(os.environ), log=tmp / "nginx.log"
    )
    wait_for_http(f"http://127.0.0.1:{port}/", proc=proc)
    return proc, port


def create_services(count: int, interval: int, target: str) -> None:
    from django.utils import timezone

    from services.models import Service

    now = timezone.now() + timedelta(seconds=15)
    Service.objects.bulk_create(
        [
            Service(
                id=f"bench-{i:06d}", name=f"bench {i}", url=f"{target}/s/{i}",
                interval_seconds=interval, timeout_seconds=5, allow_private=True, enabled=False,
                next_check_at=now + timedelta(seconds=random.uniform(0, interval)),
            )
            for i in range(count)
        ],
        batch_size=5000,
    )  # fmt: skip


def lags_since(start, end) -> tuple[list[float], int, int]:
    """(lags in seconds, results, failures) of results due in [start, end)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM started_at - time), status FROM services_checkresult "
            "WHERE time >= %s AND time < %s",
            [start, end],
        )
        rows = cursor.fetchall()
    lags = [float(lag) for lag, status in rows if lag is not None]
    failures = sum(1 for _, status in rows if status != "up")
    return lags, len(rows), failures


LAG_WINDOW_SECONDS = 10


def lag_windows(start, end) -> list[tuple[float, int, float, float]]:
    """(seconds after start, results, lag p99, lag max) of each 10-second window of due times:
    whether the tail is spread evenly or comes in bursts."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT floor(extract(epoch FROM time - %s) / %s) AS w, count(*), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - time)),"
            " max(extract(epoch FROM started_at - time)) "
            "FROM services_checkresult WHERE time >= %s AND time < %s AND started_at IS NOT NULL "
            "GROUP BY w ORDER BY w",
            [start, LAG_WINDOW_SECONDS, start, end],
        )
        return [
            (float(w) * LAG_WINDOW_SECONDS, n, float(p99), float(top))
            for w, n, p99, top in cursor.fetchall()
        ]


def task_runs(log: Path) -> list[tuple[float, float, int, str]]:
    """(start, end, pid, task name) of every task the worker ran (--task-log)."""
    if not log.exists():
        return []
    runs = []
    for line in log.read_text().splitlines():
        start, end, pid, name = line.split()
        runs.append((float(start), float(end), int(pid), name))
    return runs


# Where a stack sample of the worker belongs, by the first of these frames it contains (the
# innermost stages first: an incident evaluated inside the result write counts as evaluation;
# the dispatcher before the result writes, whose marker services/actions.py it shares).
STAGES = (
    ("incident evaluation", ("incidents/evaluation.py",)),
    ("HTTP client", ("aiohttp/", "services/checks/", "_run_on_time", "run_on_time")),
    ("dispatcher", ("services/tasks.py:dispatch", "checks_claim_due", "checks_reclaim_expired",
                    "check_gaps_record", "push_overdue_record", "dispatch (services/tasks.py")),
    ("result writes", ("check_results_record", "services/actions.py", "_release")),
    ("broker", ("kombu/", "redis/", "celery/backends/", "amqp/")),
)  # fmt: skip


def stage_of(stack: str) -> str:
    for stage, markers in STAGES:
        if any(marker in stack for marker in markers):
            return stage
    return "other (Celery, Django set-up, Python)"


def redis_marker(url: str) -> str:
    """What the bench's redis-server has on its command line: its socket path or its port."""
    parts = urlsplit(url)
    return parts.path if parts.scheme == "unix" else f":{parts.port or 6379}"


def watch(processes: dict, args: argparse.Namespace, tmp: Path):
    """A CPU meter over the stack's processes, an RSS reader and a py-spy starter."""
    from bench.common import CpuMeter, process_tree, processes_matching

    worker, jobs = processes["worker"], processes["jobs"]
    beat, nginx = processes["beat"], processes["nginx"]
    meter = CpuMeter(
        {
            "worker": lambda: process_tree(worker.pid),
            "jobs": lambda: process_tree(jobs.pid),
            "beat": lambda: process_tree(beat.pid),
            "redis": lambda: [
                p
                for p in processes_matching("redis-server")
                if redis_marker(args.redis_url) in " ".join(p.cmdline())
            ],
            "postgres": lambda: processes_matching(" noc_bench_checks "),
            "nginx": lambda: process_tree(nginx.pid),
        }
    )

    def memory() -> dict[str, float]:
        return {
            name: sum(p.memory_info().rss for p in process_tree(proc.pid)) / 2**20
            for name, proc in (("worker", worker), ("jobs", jobs), ("beat", beat))
        }

    def profile():
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not args.profile_seconds or not Path(spy).exists():
            return None
        out = tmp / "worker.pyspy"
        proc = subprocess.Popen(
            [spy, "record", "--gil", "--subprocesses", "--rate", "100", "--format", "raw",
             "--duration", str(args.profile_seconds), "--pid", str(worker.pid),
             "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def stages() -> dict[str, float]:
            proc.wait(timeout=args.profile_seconds + 60)
            counts: dict[str, int] = {}
            others: dict[str, int] = {}
            for line in out.read_text().splitlines() if out.exists() else []:
                stack, _, n = line.rpartition(" ")
                stage = stage_of(stack)
                counts[stage] = counts.get(stage, 0) + int(n)
                if stage.startswith("other"):
                    # Where "other" is spent: the outermost frame of ours or a library's
                    # below the pool's own loop, and the innermost frame.
                    frames = stack.split(";")
                    key = f"{frames[-1].strip()} ← {frames[min(len(frames) - 1, 12)].strip()}"
                    others[key] = others.get(key, 0) + int(n)
            total = sum(counts.values()) or 1
            shares = {stage: n / total for stage, n in counts.items()}
            shares["_other_top"] = sorted(others.items(), key=lambda kv: -kv[1])[:8]
            shares["_total"] = total
            return shares

        return stages

    return meter, memory, profile


AIOHTTP_RATE = """
import asyncio, sys, time
import aiohttp
from services.checks.engine import _loop_factory

async def main(url, connections, seconds):
    done = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def client():
            nonlocal done
            while time.monotonic() < deadline:
                async with session.get(url) as response:
                    await response.read()
                done += 1
        began = time.monotonic()
        await asyncio.gather(*(client() for _ in range(connections)))
        print(done / (time.monotonic() - began))

factory = _loop_factory()
with asyncio.Runner(loop_factory=factory) as runner:
    runner.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


def aiohttp_rate(url: str, connections: int, seconds: float = 5) -> float:
    """Requests/s of the worker's HTTP client alone against `url`, in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-c", AIOHTTP_RATE, url, str(connections), str(seconds)],
        cwd=BASE_DIR, capture_output=True, text=True, timeout=seconds + 60, check=True,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def run_burst(count: int) -> dict:
    from django.utils import timezone

    from services.models import CheckResult, Service

    ids = [f"bench-{i:06d}" for i in range(count)]
    due = timezone.now() + timedelta(seconds=3)
    Service.objects.filter(id__in=ids).update(enabled=True, next_check_at=due)
    deadline = time.monotonic() + 120
    while CheckResult.objects.filter(time=due).count() < count and time.monotonic() < deadline:
        time.sleep(0.2)
    done = timezone.now()
    Service.objects.filter(id__in=ids).update(enabled=False)
    lags, results, failures = lags_since(due, due + timedelta(microseconds=1))
    return {
        "services": count,
        "recorded": results,
        "failures": failures,
        "seconds_to_all_recorded": (done - due).total_seconds(),
        "lag_p50": percentile(lags, 50) if lags else None,
        "lag_p99": percentile(lags, 99) if lags else None,
    }


def run_sustained(args: argparse.Namespace, processes: dict, tmp: Path) -> dict:
    from django.db import connection
    from django.utils import timezone

    start = timezone.now() + timedelta(seconds=5)
    with connection.cursor() as cursor:
        # Spread over the interval, as service_create's jitter does.
        cursor.execute(
            "UPDATE services_service SET enabled = true, "
            "next_check_at = %s + random() * make_interval(secs => %s)",
            [start, args.interval],
        )
    print(
        f"sustained: {args.services} services every {args.interval}s for {args.duration}s …",
        flush=True,
    )
    # Measure whole intervals after the first, when every service has its phase.
    begin = start + timedelta(seconds=args.interval)
    end = start + timedelta(seconds=args.duration)
    time.sleep(max((begin - timezone.now()).total_seconds(), 0))
    meter, memory, profile = watch(processes, args, tmp)
    with meter:
        rss_start = memory()
        profiler = profile()
        time.sleep(max((end - timezone.now()).total_seconds(), 0))
        rss_end = memory()
    stages = profiler() if profiler else None
    time.sleep(5)  # the last checks of the window are written
    lags, results, failures = lags_since(begin, end)
    seconds = (end - begin).total_seconds()
    return {
        "begin": begin,
        "windows": lag_windows(begin, end),
        "cpu": meter.usage,
        "rss_start": rss_start,
        "rss_end": rss_end,
        "stages": stages,
        "window_seconds": seconds,
        "recorded": results,
        "expected": int(args.services * seconds / args.interval),
        "checks_per_second": results / seconds if seconds > 0 else 0,
        "failures": failures,
        "lag_p50": percentile(lags, 50) if lags else None,
        "lag_p99": percentile(lags, 99) if lags else None,
    }


def main() -> None:
    args = parse_args()
    database, redis = base_urls()
    tmp = Path(tempfile.mkdtemp(prefix="noc-bench-checks-"))
    with throwaway_database(database, "noc_bench_checks") as url:
        os.environ.update(DATABASE_URL=url, REDIS_URL=private_redis(redis), NOC_EMBEDDED="off")
        args.redis_url = redis
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "noc.settings")
        import django

        django.setup()
        from django.core.management import call_command

        from noc.cachekeys import delete_prefixed

        call_command("migrate", verbosity=0)
        call_command("sync_beat", verbosity=0)
        delete_prefixed()  # this installation's keys, not the whole database
        nginx, port = start_nginx(tmp)
        processes = [nginx]
        try:
            target = f"http://127.0.0.1:{port}"
            batch = int(os.environ.get("NOC_DISPATCH_BATCH_SIZE", "200"))
            ceiling = run_wrk(f"{target}/", threads=1, connections=batch, duration=5)
            client_rate = aiohttp_rate(f"{target}/", batch)
            create_services(args.services, args.interval, target)
            env = child_environment(
                DEBUG="false", LOG_LEVEL="WARNING", NOC_BENCH_TASK_LOG=str(tmp / "tasks.log")
            )
            worker, jobs, beat = make_run_celery(
                tmp, env, app="bench.task_timing" if args.task_log else "noc",
                concurrency=args.concurrency,
            )  # fmt: skip
            processes += [worker, jobs, beat]
            time.sleep(5)
            burst = run_burst(args.burst)
            sustained = run_sustained(
                args, {"worker": worker, "jobs": jobs, "beat": beat, "nginx": nginx}, tmp
            )
        except Exception:
            for name in ("worker.log", "jobs.log", "beat.log"):
                print(f"--- {name}\n{tail(tmp / name)}", file=sys.stderr)
            raise
        finally:
            for proc in reversed(processes):
                stop_process(proc)
            from django.db import connections

            connections.close_all()
        sustained["tasks"] = task_runs(tmp / "tasks.log")
        report(args, ceiling, client_rate, burst, sustained, server_version(url))
    shutil.rmtree(tmp, ignore_errors=True)


def report(args, ceiling, client_rate: float, burst: dict, sustained: dict, pg_version: str):
    from django.conf import settings

    required = args.services / args.interval
    connections = os.environ.get("NOC_DISPATCH_BATCH_SIZE", "200")
    burst_seconds = burst["seconds_to_all_recorded"]
    burst_rate = burst["recorded"] / max(burst_seconds, 1e-9)
    ceiling_rate = ceiling.requests_per_second
    lines = [
        f"machine: {os.cpu_count()} cores, PostgreSQL {pg_version}, "
        f"worker processes {settings.NOC_WORKER_CONCURRENCY} (scheduled work: dispatch, checks) "
        f"+ {settings.NOC_JOBS_CONCURRENCY} (jobs: rollups, maintenance)",
        f"ceiling (wrk -c{connections} on nginx): {ceiling_rate:,.0f} req/s",
        f"burst: {burst['recorded']}/{burst['services']} recorded {burst_seconds:.2f}s after due, "
        f"lag p50 {fmt(burst['lag_p50'])} p99 {fmt(burst['lag_p99'])}, "
        f"failures {burst['failures']}",
        f"  burst throughput {burst_rate:,.0f} checks/s = {ratio(burst_rate, ceiling_rate):.4f} "
        "of ceiling",
        f"sustained: {sustained['checks_per_second']:,.1f} checks/s (required {required:,.1f}), "
        f"{sustained['recorded']}/{sustained['expected']} recorded, "
        f"failures {sustained['failures']}, "
        f"lag p50 {fmt(sustained['lag_p50'])} p99 {fmt(sustained['lag_p99'])}",
        f"  = {ratio(sustained['checks_per_second'], ceiling_rate):.4f} of ceiling, "
        f"{ratio(sustained['checks_per_second'], client_rate):.3f} of the aiohttp client alone",
        f"aiohttp client alone ({connections} concurrent, keep-alive): {client_rate:,.0f} req/s "
        f"= {ratio(client_rate, ceiling_rate):.3f} of ceiling",
        *cpu_lines(sustained),
        *lag_lines(sustained),
        f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
    ]
    print("\n" + "\n".join(lines))


def cpu_lines(sustained: dict) -> list[str]:
    cpu, checks = sustained["cpu"], max(sustained["recorded"], 1)
    per_check = {name: 1000 * sec / checks for name, sec in cpu.groups.items()}
    ours = sum(cpu.groups.values())
    lines = [
        "CPU per check recorded (ms): "
        + ", ".join(f"{name} {ms:.3f}" for name, ms in per_check.items())
        + f"; everything else on the machine {1000 * cpu.other() / checks:.3f} "
        f"(machine {cpu.busy_fraction:.0%} busy)",
        f"  server-side bound: {(os.cpu_count() or 1) * checks / max(ours, 1e-9):,.0f}"
        " checks/s if these processes had every core",
    ]
    if sustained["stages"]:
        worker = per_check["worker"]
        stages = dict(sustained["stages"])
        other_top, total = stages.pop("_other_top"), stages.pop("_total")
        lines.append(
            "  worker by stage (py-spy --gil shares × worker CPU): "
            + ", ".join(
                f"{stage} {share:.0%} = {share * worker:.3f} ms"
                for stage, share in sorted(stages.items(), key=lambda kv: -kv[1])
            )
        )
        lines += [
            f"    other: {n / total:.1%} {frames}" for frames, n in other_top if n / total >= 0.01
        ]
    rss0, rss1 = sustained["rss_start"], sustained["rss_end"]
    lines.append(
        "RSS at start → end of the window: "
        + ", ".join(f"{name} {rss0[name]:.0f} → {rss1[name]:.0f} MiB" for name in rss0)
    )
    return lines


def lag_lines(sustained: dict) -> list[str]:
    windows = sustained["windows"]
    if not windows:
        return []
    over = [w for w in windows if w[2] > 1.0]
    worst = sorted(windows, key=lambda w: -w[2])[:5]
    lines = [
        f"lag by {LAG_WINDOW_SECONDS} s window of due times: p99 over 1 s in {len(over)} of "
        f"{len(windows)}; worst: "
        + ", ".join(f"+{at:.0f}s p99 {p99:.2f}s max {top:.2f}s" for at, _, p99, top in worst)
    ]
    tasks = sustained.get("tasks") or []
    if not tasks:
        return lines
    begin = sustained["begin"].timestamp()
    end = begin + sustained["window_seconds"]
    inside = [t for t in tasks if t[1] >= begin and t[0] < end]
    by_name: dict[str, list[float]] = {}
    for start, stop, _, name in inside:
        by_name.setdefault(name, []).append(stop - start)
    lines.append("tasks run in the window (count; seconds holding a process: total, p50, max):")
    lines += [
        f"  {name}: {len(spans)}, {sum(spans):.1f} s, {percentile(spans, 50):.3f} s, "
        f"{max(spans):.3f} s"
        for name, spans in sorted(by_name.items(), key=lambda kv: -sum(kv[1]))
    ]
    for at, _, p99, _ in worst:
        lo, hi = begin + at - 5, begin + at + LAG_WINDOW_SECONDS
        held = [
            f"{name} {stop - start:.2f}s@{start - begin:+.0f}"
            for start, stop, _, name in inside
            if stop >= lo and start < hi and name != "services.run_checks" and stop - start > 1.0
        ]
        lines.append(
            f"  window +{at:.0f}s (p99 {p99:.2f}s), tasks over 1 s: {', '.join(held) or 'none'}"
        )
    return lines


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}s"


if __name__ == "__main__":
    main()
