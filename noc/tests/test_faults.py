"""The stack rides out an operator's bad day: Redis and PostgreSQL killed for 10 s, the
worker's master killed, the whole stack restarted. After each, every slot of the fleet's grids
in the window is recorded once (run or missed, none lost, none off its grid), the fleet's check
start times are still spread over its interval, and the stack serves again.

One real stack (faultstack.FaultStack: its own embedded servers, `manage.py up`) serves the
cases in order. Each prints its figures. Select them with `-m fault`.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import psutil
import pytest
from django.conf import settings

from noc.tests.faultstack import (
    FaultStack,
    SlotReport,
    http_status,
    now,
    start_spread,
    wait_for_checks_after,
    wait_for_slots,
)

pytestmark = [pytest.mark.slow, pytest.mark.fault]

FLEET = 200
OUTAGE_SECONDS = 10
AFTER = timedelta(seconds=12)  # the window runs on this long after checks resumed
BEFORE = timedelta(seconds=5)


@pytest.fixture(scope="module")
def stack(target):
    stack = FaultStack()
    try:
        stack.start_postgres()
        stack.start_redis()
        stack.start_runner()
        stack.wait_ready(timeout=180)
        # A target outside the stack, so that it stays up while the stack restarts.
        stack.create_fleet(FLEET, url=f"{target}/ok")
        stack.create_api_key()
        time.sleep(stack.interval.total_seconds() + 2)  # every service has run once
        yield stack
    finally:
        stack.close()


@pytest.fixture
def figures(request):
    """Print a line of the case's figures in the test output, whether it passes or not."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"    [{request.node.name.removeprefix('test_')}] {line}")

    return say


def during_outage(stack: FaultStack, figures) -> dict[str, int | None]:
    """What web answers while the dependency is away."""
    answers = {
        "/health/live": http_status(stack.url("/health/live")),
        "/health/ready": http_status(stack.url("/health/ready"), timeout=8),
        "/api/services/": http_status(stack.url("/api/services/"), timeout=8, key=stack.api_key),
    }
    figures("during it: " + ", ".join(f"{path} {code}" for path, code in answers.items()))
    return answers


def check_window(stack: FaultStack, since, back, figures) -> SlotReport:
    """Every slot from `since` to AFTER past the moment checks resumed is recorded once,
    on its grid (run or missed); no check started long after its slot; and over the last two
    intervals of the window the fleet's check starts are spread over the interval as its
    phases are (a fleet lined up by the outage would start in one fifth of it)."""
    resumed = wait_for_checks_after(stack, back)
    until = resumed + AFTER
    # Leases end 5 s after a slot (2 s timeout + 3 s grace): give the reclaimer time after them.
    time.sleep(max((until - now()).total_seconds(), 0) + 6)
    report = wait_for_slots(stack, since, until)
    figures(report.summary())
    steady = [s for s in report.starts if until - 2 * stack.interval <= s < until]
    spread = start_spread(steady, stack.interval)
    share = max(spread) / max(sum(spread), 1)
    phases = [2 * n for n in start_spread(list(stack.fleet.values()), stack.interval)]
    figures(
        f"checks resumed {(resumed - back).total_seconds():.1f}s after the dependency "
        f"returned; starts over the window's last two intervals per fifth of the interval: "
        f"{spread} (max {share:.0%}; the fleet's phases: {phases})"
    )
    assert not report.missing, f"slots lost: {report.missing[:10]}"
    assert not report.off_grid, f"results off their service's grid: {report.off_grid[:10]}"
    # A check starts at its slot, not in a burst of late ones once the stack is back.
    assert report.lag_p95 < 0.4 * stack.interval.total_seconds(), report.summary()
    # 200 phases drawn uniformly fill each fifth with 20 % ± a few; a lined-up fleet, one.
    assert len(steady) >= FLEET, f"only {len(steady)} checks ran in two intervals"
    assert share < 0.4, spread
    # ... and where its phases put them (a start may slip into the next fifth by its lag).
    assert all(abs(got - want) <= 0.25 * want + 5 for got, want in zip(spread, phases, strict=True))
    assert report.down <= report.run * 0.02, f"{report.down} checks of a healthy target failed"
    return report


def serving_again(stack: FaultStack, back_at: float, figures) -> None:
    ready = stack.wait_ready(timeout=60)
    status = http_status(stack.url("/status/"))
    figures(f"ready {time.monotonic() - back_at:.1f}s after the dependency returned ({ready:.1f}s "
            f"of polling); /status/ {status}")  # fmt: skip
    assert status == 200


def test_redis_killed_for_10s(stack, figures):
    worker, beat = stack.child_pid("worker"), stack.child_pid("beat")
    since = now() - BEFORE
    stack.kill_redis()
    time.sleep(3)
    # Web answers; the API works without its rate-limit cache; readiness says what is missing.
    answers = during_outage(stack, figures)
    assert answers == {"/health/live": 200, "/health/ready": 503, "/api/services/": 200}
    time.sleep(OUTAGE_SECONDS - 3)
    stack.start_redis()
    back, returned = time.monotonic(), now()
    serving_again(stack, back, figures)
    check_window(stack, since, returned, figures)
    # The Celery 5.7.0 failure this pins against killed the worker outright.
    assert (stack.child_pid("worker"), stack.child_pid("beat")) == (worker, beat)
    assert psutil.pid_exists(worker)
    assert "Unrecoverable error" not in stack.log()


def test_postgres_killed_for_10s(stack, figures):
    worker = stack.child_pid("worker")
    since = now() - BEFORE
    stack.crash_postgres()
    time.sleep(3)
    # A request that needs the database is a 503 naming it, not a 500.
    answers = during_outage(stack, figures)
    assert answers == {"/health/live": 200, "/health/ready": 503, "/api/services/": 503}
    time.sleep(OUTAGE_SECONDS - 3)
    stack.start_postgres()
    back, returned = time.monotonic(), now()
    serving_again(stack, back, figures)
    check_window(stack, since, returned, figures)
    assert stack.child_pid("worker") == worker
    # One line when the outage starts and one when it ends, per worker process, not a
    # traceback a second.
    log = stack.log()
    figures(f"dispatcher outage lines: {log.count('for the check dispatcher unavailable')} "
            f"down, {log.count('for the check dispatcher back after')} back")  # fmt: skip
    # at most one per process of the scheduled work's pool, where the dispatcher runs
    assert log.count("for the check dispatcher unavailable") <= settings.NOC_WORKER_CONCURRENCY


def test_worker_master_killed(stack, figures):
    worker = stack.child_pid("worker")
    since = now() - BEFORE
    os.kill(worker, signal.SIGKILL)
    killed, killed_at = time.monotonic(), now()
    deadline = killed + 60
    while stack.child_pid("worker") == worker:
        assert time.monotonic() < deadline, stack.log_tail()
        time.sleep(0.2)
    figures(f"worker restarted by the runner after {time.monotonic() - killed:.1f}s")
    assert "worker was killed by signal 9" in stack.log()
    check_window(stack, since, killed_at, figures)


def test_whole_stack_restarted(stack, figures):
    since = now() - BEFORE
    stopped = time.monotonic()
    assert stack.stop_runner() == 0
    figures(f"stopped in {time.monotonic() - stopped:.1f}s")
    time.sleep(max(OUTAGE_SECONDS - (time.monotonic() - stopped), 0))
    stack.start_runner()
    back, returned = time.monotonic(), now()
    serving_again(stack, back, figures)
    check_window(stack, since, returned, figures)
