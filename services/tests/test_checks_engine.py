"""The engine: dispatch, never raising, and a concurrent batch that keeps input order."""

from __future__ import annotations

import asyncio

import pytest

from services.checks.context import CheckContext
from services.checks.engine import run_batch, run_batch_sync, run_one
from services.checks.spec import Assertions, CheckSpec
from services.checks.testing import check_once, closed_port, serve_http


@pytest.fixture(scope="module")
def server():
    with serve_http() as running:
        yield running


def test_push_is_not_run_by_an_engine():
    outcome = check_once(CheckSpec(kind="push"))

    assert outcome.status == "down"
    assert outcome.error == "check kind 'push' is not run by an engine"


def test_a_malformed_spec_becomes_a_down_outcome():
    outcome = check_once(CheckSpec(kind="http", url="not a url", timeout=2))

    assert outcome.status == "down"
    assert outcome.error


def test_batch_of_200_returns_outcomes_in_input_order(server):
    healthy = Assertions(json_path="$.status", json_expected="ok")
    specs = [
        CheckSpec(kind="http", url=server.url("/ok"), assertions=healthy)
        if i % 3
        else CheckSpec(kind="http", url=server.url("/status/503"))
        for i in range(200)
    ]

    outcomes = run_batch_sync(specs, concurrency=50)

    assert len(outcomes) == 200
    assert [o.status for o in outcomes] == ["up" if i % 3 else "down" for i in range(200)]
    assert all(o.status_code == (200 if i % 3 else 503) for i, o in enumerate(outcomes))


def test_batch_mixes_kinds_and_keeps_guard_settings_apart(server):
    port = closed_port()
    specs = [
        CheckSpec(kind="http", url=server.url("/ok"), allow_private=True),
        CheckSpec(kind="http", url=server.url("/ok"), allow_private=False),
        CheckSpec(kind="tcp", host="127.0.0.1", port=server.port),
        CheckSpec(kind="tcp", host="127.0.0.1", port=port),
        CheckSpec(kind="http", url=server.url("/ok"), allow_private=True),
    ]

    outcomes = asyncio.run(run_batch(specs))

    assert [o.status for o in outcomes] == ["up", "down", "up", "down", "up"]
    # A connection pooled for a private-allowed check never serves a strict one.
    assert outcomes[1].details["refused"] == "loopback"
    assert outcomes[3].error == "connection refused"


def test_connections_are_reused_within_a_context(server):
    async def run_twice():
        async with CheckContext() as ctx:
            spec = CheckSpec(kind="http", url=server.url("/ok"))
            first = await run_one(spec, ctx)
            second = await run_one(spec, ctx)
            connector = ctx.http_session(allow_private=True).connector
            return first, second, connector

    first, second, connector = asyncio.run(run_twice())

    assert first.status == second.status == "up"
    assert connector.limit == 200
