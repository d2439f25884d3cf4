"""Shared pieces of the benchmarks in bench/: ports, throwaway databases, processes, wrk.

Nothing here knows about a particular benchmark. A benchmark script typically:

    with throwaway_database(admin_url, "noc_bench_x") as url:   # drop, create, always drop
        env = child_environment(DATABASE_URL=url, ...)
        proc = start_process([...], env=env, log=path)           # its own process group
        try:
            wait_for_http(f"http://127.0.0.1:{port}/health/live", proc=proc)
            ceiling = run_wrk(url_a, connections=64, duration=10)
            measured = run_wrk(url_b, connections=64, duration=10, script=lua_path)
        finally:
            stop_process(proc)

and reports `measured.requests_per_second / ceiling.requests_per_second` with both absolute
figures, so a number stays comparable between machines and runs. On a machine other work
shares, `CpuMeter` says how much of the CPU the measured processes actually got, and CPU
milliseconds per request stay meaningful when requests per second do not.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import resource
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# --- ports ------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel picks it; a race is unlikely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --- databases --------------------------------------------------------------------------------

_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def database_url_with_name(url: str, name: str) -> str:
    """The same server and credentials, another database (`postgresql://u:p@h/NAME?host=…`)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin_connect(url: str):
    import psycopg

    # The maintenance database: we cannot drop the database we are connected to.
    return psycopg.connect(database_url_with_name(url, "postgres"), autocommit=True)


def drop_database(url: str, name: str) -> None:
    """Drop `name` on the server of `url`, disconnecting its sessions (PostgreSQL 13+)."""
    _check_database_name(name)
    with _admin_connect(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(url: str, name: str) -> str:
    """Create `name` (dropping a leftover first) and return a URL that points at it."""
    _check_database_name(name)
    drop_database(url, name)
    with _admin_connect(url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url_with_name(url, name)


@contextlib.contextmanager
def throwaway_database(url: str, name: str) -> Iterator[str]:
    """A fresh database on the server of `url` for the duration of the block; always dropped."""
    new_url = create_database(url, name)
    try:
        yield new_url
    finally:
        drop_database(url, name)


def server_version(url: str) -> str:
    """PostgreSQL's version string, e.g. '18.6'."""
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def _check_database_name(name: str) -> None:
    # Interpolated into DDL: accept plain identifiers only.
    if not _DATABASE_NAME.match(name):
        raise ValueError(f"not a plain database name: {name!r}")


# --- processes --------------------------------------------------------------------------------


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment with `overrides` applied (for the servers a bench starts)."""
    env = dict(os.environ)
    env.update(overrides)
    return env


def start_process(
    command: Sequence[str], *, env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen:
    """Start `command` in its own process group (so stop_process reaches its children too),
    with stdout and stderr appended to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> int | None:
    """SIGTERM the process group we started, SIGKILL it after `timeout`; returns the exit code."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # start_new_session made the child its group leader


def make_run_workers(
    tmp: Path, env: Mapping[str, str], *, app: str = "noc", concurrency: int | None = None
) -> list[subprocess.Popen]:
    """`make run`'s two Celery workers (the scheduled work's and the jobs'), with the queues
    and processes its runner gives them (`concurrency` overrides the scheduled work's), logging
    warnings only to tmp/<name>.log. Needs Django set up."""
    from django.conf import settings

    from noc.runner import Runner

    if concurrency is not None:
        settings.NOC_WORKER_CONCURRENCY = concurrency
    plan = {c.name: list(c.argv) for c in Runner(host="127.0.0.1", port=0).plan()}
    started = []
    for name in ("worker", "jobs"):
        argv = plan[name]
        argv[argv.index("-A") + 1] = app
        argv[argv.index("--loglevel") + 1] = "WARNING"
        argv[argv.index("-n") + 1] = f"bench-{name}@%h"
        argv += ["--without-gossip", "--without-mingle"]
        started.append(start_process(argv, env=env, log=tmp / f"{name}.log", cwd=settings.BASE_DIR))
    return started


def make_run_celery(
    tmp: Path, env: Mapping[str, str], *, app: str = "noc", concurrency: int | None = None
) -> list[subprocess.Popen]:
    """`make run`'s two workers (make_run_workers) and beat, logging warnings only to tmp."""
    import sys

    from django.conf import settings

    beat = start_process(
        [sys.executable, "-m", "celery", "-A", "noc", "beat", "--loglevel", "WARNING",
         "--schedule", str(tmp / "beat-schedule")],
        env=env, log=tmp / "beat.log", cwd=settings.BASE_DIR,
    )  # fmt: skip
    return [*make_run_workers(tmp, env, app=app, concurrency=concurrency), beat]


def wait_for_http(url: str, *, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers 2xx; fail early if `proc` (the server) exits meanwhile."""
    deadline = time.monotonic() + timeout
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s: {last_error}")


def process_tree(pid: int) -> list:
    """The process `pid` and its descendants, as psutil.Process objects (empty if gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def processes_matching(text: str) -> list:
    """Processes whose command line contains `text` (e.g. PostgreSQL backends of a database,
    whose title is `postgres: user DBNAME [local] idle`)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error, TypeError):
            if text in " ".join(proc.info["cmdline"] or ()):
                found.append(proc)
    return found


def wait_until_stable(read: Callable[[], int], *, quiet: float = 1.0, timeout: float = 30.0) -> int:
    """Poll `read` until its value has not changed for `quiet` seconds (e.g. a row count while
    a server finishes the requests a load generator abandoned); return that value."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        current = read()
        if current != value:
            value, since = current, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
    raise TimeoutError(f"still changing after {timeout:.0f} s (last value {value})")


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file, for error messages."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(errors="replace")[-chars:]
    return ""


# --- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, not {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ratio(measured: float, ceiling: float) -> float:
    return measured / ceiling if ceiling else float("nan")


# --- CPU accounting -------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy since boot (all cores, idle excluded)."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _cpu_seconds(proc) -> float | None:
    import psutil

    try:
        times = proc.cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


@dataclass
class CpuUsage:
    """CPU-seconds used during a block: by the machine and by each named group of processes."""

    wall_seconds: float
    machine: float
    groups: dict[str, float]
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    @property
    def busy_fraction(self) -> float:
        """How much of the machine's capacity was busy (1.0 = every core all the time)."""
        return self.machine / (self.wall_seconds * self.cores) if self.wall_seconds else 0.0

    def other(self, *also_ours: float) -> float:
        """CPU-seconds spent by processes outside the groups (and outside `also_ours`)."""
        return max(0.0, self.machine - sum(self.groups.values()) - sum(also_ours))


class CpuMeter:
    """Measures CPU use during a `with` block. `groups` maps a name to a function returning the
    processes of that group. The groups are looked at on entry, on exit and every `poll`
    seconds in between, so processes started inside count, and so do those that exit inside
    (up to their last look): PostgreSQL backends of connections a worker closes after
    CONN_MAX_AGE, say. Read `.usage` after the block."""

    def __init__(self, groups: Mapping[str, Callable[[], Iterable]], poll: float = 1.0) -> None:
        self.groups = groups
        self.poll = poll
        self.usage: CpuUsage | None = None

    def __enter__(self) -> CpuMeter:
        self._start = {name: self._snapshot(find()) for name, find in self.groups.items()}
        self._seen = {name: dict(found) for name, found in self._start.items()}
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()
        self._machine = machine_busy_seconds()
        self._wall = time.monotonic()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.poll):
            self._look()

    def _look(self) -> None:
        for name, find in self.groups.items():
            seen = self._seen[name]
            with contextlib.suppress(Exception):  # a group's lookup racing a process's exit
                seen.update(self._snapshot([*find(), *(proc for proc, _ in seen.values())]))

    def __exit__(self, *exc_info: object) -> None:
        wall = time.monotonic() - self._wall
        machine = machine_busy_seconds() - self._machine
        self._stop.set()
        self._watcher.join()
        self._look()
        groups = {}
        for name in self.groups:
            before = self._start[name]
            groups[name] = sum(
                cpu - before.get(pid, (None, 0.0))[1] for pid, (_, cpu) in self._seen[name].items()
            )
        self.usage = CpuUsage(wall_seconds=wall, machine=machine, groups=groups)

    @staticmethod
    def _snapshot(processes: Iterable) -> dict[int, tuple[object, float]]:
        found = {}
        for proc in processes:
            if (cpu := _cpu_seconds(proc)) is not None:
                found[proc.pid] = (proc, cpu)
        return found


def machine_busy_fraction(sample_seconds: float = 3.0) -> float:
    """How busy the whole machine is over the next `sample_seconds` (0.0 idle .. 1.0 full)."""
    before = machine_busy_seconds()
    time.sleep(sample_seconds)
    cores = os.cpu_count() or 1
    return (machine_busy_seconds() - before) / (sample_seconds * cores)


def wait_for_quiet_machine(
    *, max_busy: float = 0.15, timeout: float = 300.0, sample_seconds: float = 3.0
) -> float:
    """On a shared machine, wait (at most `timeout` seconds) until other work leaves it mostly
    idle, so one benchmark does not measure another. Returns the last busy fraction seen,
    which the caller reports whether or not it fell below `max_busy`."""
    deadline = time.monotonic() + timeout
    busy = machine_busy_fraction(sample_seconds)
    while busy > max_busy and time.monotonic() < deadline:
        busy = machine_busy_fraction(sample_seconds)
    return busy


def children_cpu_seconds() -> float:
    """CPU-seconds of this process's reaped children so far (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- wrk --------------------------------------------------------------------------------------

WRK = "/usr/bin/wrk"


@dataclass
class WrkResult:
    """What wrk reported: counts, rate, socket errors and (with --latency) percentiles in ms."""

    requests: int
    seconds: float
    requests_per_second: float
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[int, float] = field(default_factory=dict)  # {50: 1.2, 75: …, 90: …, 99: …}
    cpu_seconds: float = 0.0  # wrk's own CPU use (run_wrk fills it in)
    output: str = ""

    @property
    def ok_responses(self) -> int:
        """Responses with a 2xx or 3xx status (wrk does not tell them apart)."""
        return self.requests - self.non_2xx_3xx

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())


def run_wrk(
    url: str,
    *,
    threads: int = 2,
    connections: int = 64,
    duration: float = 10,
    script: Path | None = None,
    timeout_seconds: float = 5,
) -> WrkResult:
    """Run wrk with --latency and parse its report. Bounded: killed at duration + 30 s."""
    command = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration:g}s",
        f"--timeout={timeout_seconds:g}s",
        "--latency",
    ]
    if script is not None:
        command += ["-s", str(script)]
    cpu_before = children_cpu_seconds()
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=duration + 30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(done.stdout)
    result.cpu_seconds = children_cpu_seconds() - cpu_before
    return result


_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)")
_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_WRK_PERCENTILE = re.compile(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_wrk(output: str) -> WrkResult:
    """Parse wrk 4's text report (the `--latency` distribution included when present)."""
    total = _WRK_TOTAL.search(output)
    rate = _WRK_RATE.search(output)
    if total is None or rate is None:
        raise ValueError(f"not a wrk report:\n{output}")
    result = WrkResult(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _TO_MS[total.group(3)] / 1000,
        requests_per_second=float(rate.group(1)),
        output=output,
    )
    if non_2xx := _WRK_NON_2XX.search(output):
        result.non_2xx_3xx = int(non_2xx.group(1))
    if sockets := _WRK_SOCKET.search(output):
        names = ("connect", "read", "write", "timeout")
        result.socket_errors = dict(zip(names, map(int, sockets.groups()), strict=True))
    for q, value, unit in _WRK_PERCENTILE.findall(output):
        result.latency_ms[int(q)] = float(value) * _TO_MS[unit]
    return result


def lua_string_list(values: Sequence[str]) -> str:
    """A Lua table literal of strings (for wrk scripts that cycle over ids or tokens)."""
    quoted = ",\n".join(f'  "{_lua_escape(v)}"' for v in values)
    return "{\n" + quoted + "\n}"


def _lua_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def ingest_server_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of a web server the ingestion benchmarks start: their own database and
    Redis, DEBUG off, no embedded servers, no API rate limits (the load is the point)."""
    return {
        **os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
        "NOC_EMBEDDED": "off", "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1",
        "NOC_API_RATE_PER_KEY": "off", "NOC_API_RATE_PER_ADDRESS": "off",
    }  # fmt: skip


def bench_application():
    """(application, its ingest key, a viewer's API key) in the benchmark's database; call once
    Django is attached to it."""
    from accounts.actions import api_key_create, user_create
    from observability import actions

    application, _, key = actions.application_create(actor=None, slug="bench", name="B")
    viewer = user_create(
        actor=None, username="bench-viewer", email="b@example.test", role="viewer",
        password=os.urandom(16).hex(),
    )  # fmt: skip
    _, token = api_key_create(actor=None, user=viewer, name="bench")
    return application, key, token
