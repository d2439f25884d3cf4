"""`make run`'s runner: starts everything on a fresh data directory, refuses a second instance,
and leaves no process behind when stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from noc.settings import BASE_DIR

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the runner exited before it was ready"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return response
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} was not ready within {timeout}s")


def family(pid: int) -> set[int]:
    parent = psutil.Process(pid)
    return {pid} | {child.pid for child in parent.children(recursive=True)}


def alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.add(pid)
        except psutil.NoSuchProcess:
            pass
    return left


def described(pids: set[int]) -> str:
    """The command lines of processes left alive, for the failure message."""
    lines = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            lines.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())[:200]}")
    return "left alive: " + "; ".join(lines)


@pytest.fixture
def fresh_var():
    path = Path(tempfile.mkdtemp(prefix="noc-run-"))
    yield path
    from noc.embedded import EmbeddedServices

    EmbeddedServices(path).destroy()
    shutil.rmtree(path, ignore_errors=True)


def test_run_starts_everything_and_stops_without_leftovers(fresh_var):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {
        "NOC_VAR_DIR": str(fresh_var),
        "NOC_PORT": str(port),
        "NOC_ADMIN_PASSWORD": "pw-for-test",
    }
    env.pop("NOC_EMBEDDED", None)
    env.pop("NOC_EMBEDDED_ATTACHED", None)
    runner = subprocess.Popen(
        [sys.executable, "manage.py", "up"],
        cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/ready", runner)
        # Pings are answered on the same host and port as everything else (noc.asgi): the
        # demo's push job, its token in upper case too, and twice so the group path runs.
        token = "00000000-0000-4000-8000-000000000008"
        for path in (token, token.upper(), token):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping/{path}") as ping:
                assert (ping.status, ping.read()) == (200, b"OK")
        pids = family(runner.pid)
        postmaster = int((fresh_var / "pgdata" / "postmaster.pid").read_text().split()[0])
        redis = int((fresh_var / "redis" / "redis.pid").read_text())
        assert alive({postmaster, redis}) == {postmaster, redis}

        # manage.py in another terminal attaches to the same servers and leaves them running.
        count_admins = (
            "from accounts.models import User; print(User.objects.filter(username='admin').count())"
        )
        other = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", count_admins],
            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert other.stdout.strip().splitlines()[-1] == "1", other.stderr
        assert alive({postmaster, redis}) == {postmaster, redis}

        second = subprocess.run(
            [sys.executable, "manage.py", "up"], cwd=BASE_DIR, env=env, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode != 0
        assert "already running" in second.stderr

        runner.send_signal(signal.SIGTERM)
        output, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()  # its children get SIGTERM through PR_SET_PDEATHSIG
    assert runner.returncode == 0, output
    assert "Created admin account 'admin'" in output
    assert "Stopped the embedded PostgreSQL and Redis." in output
    deadline = time.monotonic() + 10
    while alive(pids | {postmaster, redis}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(pids | {postmaster, redis}) == set()


def embedded_env(var: Path) -> dict[str, str]:
    """This environment with embedded servers under `var` (no DATABASE_URL / REDIS_URL)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return env | {"NOC_VAR_DIR": str(var)}


def start_runner(var: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "up"],
        cwd=BASE_DIR,
        env=embedded_env(var) | {"NOC_PORT": str(port), "NOC_DEMO_PORT": str(free_port())},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_runner_killed_outright_takes_its_children_with_it(fresh_var):
    port = free_port()
    runner = start_runner(fresh_var, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/ready", runner)
        children = family(runner.pid) - {runner.pid}
        assert children
        runner.kill()
        runner.wait(timeout=10)
        deadline = time.monotonic() + 30
        while alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert alive(children) == set(), described(alive(children))
    finally:
        if runner.poll() is None:
            runner.kill()


def servers_running(var: Path) -> dict[str, bool]:
    return {
        "postgres": (var / "pgdata" / "postmaster.pid").exists(),
        "redis": (var / "redis" / "redis.pid").exists(),
    }


def wait_stopped(var: Path, timeout: float = 30) -> dict[str, bool]:
    deadline = time.monotonic() + timeout
    while any(servers_running(var).values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return servers_running(var)


def test_a_manage_py_command_stopped_by_sigterm_stops_the_servers_it_started(fresh_var):
    command = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", "import time; print('up', flush=True); "
         "time.sleep(300)"],
        cwd=BASE_DIR, env=embedded_env(fresh_var), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        while (line := command.stdout.readline()) and line.strip() != "up":
            pass  # the shell's own banner first
        assert line.strip() == "up"
        assert servers_running(fresh_var) == {"postgres": True, "redis": True}
        command.send_signal(signal.SIGTERM)
        command.wait(timeout=30)
        assert wait_stopped(fresh_var) == {"postgres": False, "redis": False}
    finally:
        if command.poll() is None:
            command.kill()


def test_a_closed_terminal_stops_the_runner_and_the_servers(fresh_var):
    port = free_port()
    runner = start_runner(fresh_var, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/ready", runner)
        everything = family(runner.pid)
        runner.send_signal(signal.SIGHUP)
        assert runner.wait(timeout=60) == 0
        assert alive(everything) == set()
        assert wait_stopped(fresh_var) == {"postgres": False, "redis": False}
    finally:
        if runner.poll() is None:
            runner.kill()
