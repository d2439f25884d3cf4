"""Run checks: one with retries (`run_one`), or a batch concurrently on one event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from services.checks.context import CheckContext
from services.checks.dns import run_dns
from services.checks.failures import describe_error, describe_timeout, find_refusal
from services.checks.http import run_http
from services.checks.spec import CheckSpec, Outcome
from services.checks.tcp import run_tcp
from services.checks.tls import run_tls

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "ENGINES",
    "RETRY_DELAY_SECONDS",
    "run_batch",
    "run_batch_sync",
    "run_one",
]

Engine = Callable[[CheckSpec, CheckContext], Awaitable[Outcome]]
ENGINES: dict[str, Engine] = {"http": run_http, "tcp": run_tcp, "dns": run_dns, "tls": run_tls}
RETRY_DELAY_SECONDS = 0.2
DEFAULT_TIMEOUT_SECONDS = CheckSpec.timeout


async def run_one(spec: CheckSpec, ctx: CheckContext) -> Outcome:
    """Run `spec`, retrying a failure up to `spec.retries` times. Never raises."""
    if not (spec.timeout and spec.timeout > 0):
        # A check without a deadline would hold a batch slot forever.
        spec = dataclasses.replace(spec, timeout=DEFAULT_TIMEOUT_SECONDS)
    attempts = 1
    outcome = await run_attempt(spec, ctx)
    while _should_retry(outcome) and attempts <= spec.retries:
        await asyncio.sleep(RETRY_DELAY_SECONDS)
        attempts += 1
        outcome = await run_attempt(spec, ctx)
    outcome.details["attempts"] = attempts
    return outcome


def _should_retry(outcome: Outcome) -> bool:
    # A refused address is policy, not a glitch: asking again cannot change the answer.
    return outcome.status == "down" and "refused" not in outcome.details


async def run_attempt(spec: CheckSpec, ctx: CheckContext) -> Outcome:
    """One attempt within `spec.timeout`; every exception becomes a "down" outcome."""
    engine = ENGINES.get(spec.kind)
    if engine is None:
        return Outcome.down(f"check kind {spec.kind!r} is not run by an engine")
    try:
        async with asyncio.timeout(spec.timeout):
            return await engine(spec, ctx)
    except TimeoutError:
        return Outcome.down(describe_timeout(spec.timeout))
    except Exception as exc:
        return _failed(exc, spec)


def _failed(exc: Exception, spec: CheckSpec) -> Outcome:
    outcome = Outcome.down(describe_error(exc, timeout=spec.timeout))
    refused = find_refusal(exc)
    if refused is not None:
        outcome.details["refused"] = refused.reason
    return outcome


async def run_batch(specs: Sequence[CheckSpec], *, concurrency: int = 200) -> list[Outcome]:
    """Run `specs` concurrently (at most `concurrency` at once); outcomes in input order."""
    concurrency = max(1, concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with CheckContext(concurrency=concurrency) as ctx:

        async def bounded(spec: CheckSpec) -> Outcome:
            # The timeout starts once a slot is free: waiting for one is not the target's fault.
            async with semaphore:
                return await run_one(spec, ctx)

        return list(await asyncio.gather(*(bounded(spec) for spec in specs)))


def run_batch_sync(specs: Sequence[CheckSpec], **kwargs: Any) -> list[Outcome]:
    """`run_batch` on a fresh event loop, for Celery tasks and management commands."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(run_batch(specs, **kwargs))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    # uvloop makes aiohttp ~25 % faster; it is optional.
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    return uvloop.new_event_loop
