"""A worker keeps its event loop and HTTP connections between batches (execution._BatchClient):
later batches reuse the connections earlier ones opened, for a bounded time, and a batch broken
in the middle never leaves work behind for the next one."""

from __future__ import annotations

import gc
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from services import execution
from services.checks.spec import CheckSpec
from services.checks.testing import PEERS, serve_http


@pytest.fixture
def server():
    with serve_http() as running:
        yield running


def batch(url: str, size: int = 5) -> list[tuple[CheckSpec, object]]:
    now = timezone.now()
    return [(CheckSpec(kind="http", url=url, timeout=5), now) for _ in range(size)]


def peers(server) -> int:
    return len(server.app[PEERS])


def test_later_batches_reuse_the_connections_earlier_batches_opened(server):
    first = execution.run_on_time(batch(server.url("/peer")))
    opened = peers(server)
    second = execution.run_on_time(batch(server.url("/peer")))
    third = execution.run_on_time(batch(server.url("/peer")))

    assert [o.status for _, o in first + second + third] == ["up"] * 15
    assert 1 <= opened <= 5
    assert peers(server) == opened


def test_connections_are_renewed_once_kept_for_the_reuse_time(server, monkeypatch):
    execution.run_on_time(batch(server.url("/peer"), size=1))
    monkeypatch.setattr(execution, "CONNECTION_REUSE_SECONDS", 0.0)
    execution.run_on_time(batch(server.url("/peer"), size=1))

    assert peers(server) == 2


def test_a_batch_broken_midway_leaves_nothing_running_for_the_next(server):
    # A slot without a due time fails its own task while the slow checks beside it still run:
    # the exception leaves the batch with them pending on the loop.
    broken = [*batch(server.url("/slow?seconds=3"), size=2), (CheckSpec(kind="http"), None)]
    with pytest.raises(TypeError):
        execution.run_on_time(broken)

    client = execution._clients.client
    assert client._runner is None  # the loop went with the broken batch, its tasks cancelled

    after = execution.run_on_time(batch(server.url("/peer"), size=2))
    assert [o.status for _, o in after] == ["up", "up"]
    assert after[0][0] - broken[0][1] < timedelta(seconds=3)  # not behind the slow checks


def test_each_thread_has_its_own_loop_and_connections(server):
    execution.run_on_time(batch(server.url("/peer"), size=1))
    results = []
    worker = threading.Thread(
        target=lambda: results.extend(execution.run_on_time(batch(server.url("/peer"), size=1)))
    )
    worker.start()
    worker.join(10)

    assert [o.status for _, o in results] == ["up"]
    assert peers(server) == 2  # the thread did not borrow the main thread's connection


def test_a_batch_larger_than_its_concurrency_runs_that_many_at_once(server):
    # Three slow checks, two at a time: the third starts when a slot frees, and its start
    # time (the lag measured) is when it got the slot, not when it was due.
    ran = execution.run_on_time(batch(server.url("/slow?seconds=0.5"), size=3), concurrency=2)

    starts = sorted(started for started, _ in ran)
    assert [o.status for _, o in ran] == ["up"] * 3
    assert starts[1] - starts[0] < timedelta(seconds=0.3)
    assert starts[2] - starts[0] >= timedelta(seconds=0.45)


def test_a_batch_within_its_concurrency_starts_every_check_at_once(server):
    ran = execution.run_on_time(batch(server.url("/slow?seconds=0.5"), size=3), concurrency=3)

    starts = sorted(started for started, _ in ran)
    assert [o.status for _, o in ran] == ["up"] * 3
    assert starts[2] - starts[0] < timedelta(seconds=0.3)


@pytest.fixture
def default_collector():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's default (importing noc.asgi raises it)
    yield
    gc.set_threshold(*saved)


def test_the_collector_runs_less_often_only_while_batches_run(default_collector):
    before = gc.get_threshold()
    entered, leave = threading.Event(), threading.Event()

    def other_batch():
        with execution._collector_relaxed():
            entered.set()
            leave.wait(5)

    with execution._collector_relaxed():
        during = gc.get_threshold()
        thread = threading.Thread(target=other_batch)
        thread.start()
        entered.wait(5)
    still_running = gc.get_threshold()  # the other thread's batch has not ended
    leave.set()
    thread.join(5)

    assert during == (execution.BATCH_GC_THRESHOLD, *before[1:])
    assert still_running == during
    assert gc.get_threshold() == before


def test_a_higher_threshold_is_never_lowered_for_a_batch():
    before = gc.get_threshold()
    gc.set_threshold(execution.BATCH_GC_THRESHOLD * 2, *before[1:])
    try:
        with execution._collector_relaxed():
            assert gc.get_threshold()[0] == execution.BATCH_GC_THRESHOLD * 2
    finally:
        gc.set_threshold(*before)


def test_a_broken_batch_restores_the_collector(server, default_collector):
    before = gc.get_threshold()
    with pytest.raises(TypeError):
        execution.run_on_time([(CheckSpec(kind="http", url=server.url("/ok")), None)])

    assert gc.get_threshold() == before
