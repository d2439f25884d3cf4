"""The runner supervises its children as a process manager would: a child that dies is
restarted with backoff (its own children cleaned up first), and only a child that keeps dying
right after each start stops the stack."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from noc.runner import Child, RestartPolicy, Runner

FAST = RestartPolicy(backoff_first=0.1, backoff_max=0.4, healthy_after=5, max_quick_deaths=3)


def runner_with(*children: Child, policy: RestartPolicy = FAST) -> Runner:
    runner = Runner(host="127.0.0.1", port=0, out=io.StringIO(), policy=policy)
    runner.plan = lambda: list(children)
    return runner


def wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def supervise(runner: Runner) -> tuple[threading.Thread, list[int]]:
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(runner.wait()), daemon=True)
    thread.start()
    return thread, code


def test_a_killed_child_is_restarted_and_its_own_children_go_with_it(tmp_path: Path):
    # Like a Celery master and its pool: the child starts a process of its own.
    pidfile = tmp_path / "grandchild"
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    child = Child("worker", [sys.executable, "-c", script])
    runner = runner_with(child)
    runner.start()
    thread, code = supervise(runner)
    try:
        wait_until(pidfile.exists)
        first, grandchild = child.process.pid, int(pidfile.read_text())
        pidfile.unlink()
        os.kill(first, signal.SIGKILL)

        wait_until(lambda: child.process.pid != first and child.process.poll() is None)
        wait_until(lambda: not psutil.pid_exists(grandchild) or
                   psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE)  # fmt: skip
        assert thread.is_alive(), "one death must not stop the stack"
    finally:
        runner.stopping = True
        thread.join(timeout=10)
        runner.stop()
    assert code == [0]
    log = runner.out.getvalue()
    assert "worker was killed by signal 9 after" in log
    assert "restarting it in 0.1s" in log
    assert log.count("Started worker") == 2


def test_a_child_that_keeps_dying_at_start_stops_the_stack_with_a_clear_message():
    crashing = Child("web", [sys.executable, "-c", "import sys; sys.exit(3)"])
    steady = Child("beat", [sys.executable, "-c", "import time; time.sleep(120)"])
    runner = runner_with(crashing, steady)
    runner.start()
    try:
        started = time.monotonic()
        assert runner.wait() == 1
        elapsed = time.monotonic() - started
    finally:
        runner.stop()
    log = runner.out.getvalue()
    # Two restarts with a doubling backoff, then the third quick death ends it.
    assert "web exited with code 3 after" in log
    assert "restarting it in 0.1s" in log and "restarting it in 0.2s" in log
    assert "3 deaths in a row, each within 5s of its start. Stopping everything" in log
    assert elapsed >= 0.3
    assert steady.process.poll() is not None  # stop() took the others down


def test_a_child_that_lived_long_enough_starts_its_backoff_over():
    child = Child("worker", [sys.executable, "-c", "pass"])
    runner = runner_with(child)
    runner.spawn(child)
    child.process.wait()
    child.quick_deaths = 2
    child.started_at = time.monotonic() - 60  # it had been running for a minute

    assert runner.on_death(child, 1)
    assert child.quick_deaths == 1
    assert child.restart_at - time.monotonic() == pytest.approx(0.1, abs=0.05)


def test_the_backoff_doubles_up_to_its_ceiling():
    policy = RestartPolicy()
    assert [policy.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
