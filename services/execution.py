"""Run checks for services: build engine specs from rows, run them, turn outcomes into
observations for `check_results_record`."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import gc
import os
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from services.actions import (
    MAX_RUN_DELAY,
    Observation,
    Recorded,
    Slot,
    check_results_record,
    missed_observation,
)
from services.checks.context import CheckContext
from services.checks.engine import _loop_factory, run_batch_sync, run_one
from services.checks.spec import Assertions, CheckSpec, Outcome
from services.choices import CheckKind
from services.models import Service
from services.schedule import superseded
from services.validation import effective_allow_private

# PostgreSQL's timestamptz resolution: the smallest step after a stored time.
RESOLUTION = timedelta(microseconds=1)


def spec_for(service: Service) -> CheckSpec:
    """The engine's spec for `service`; raises ValueError for a configuration it cannot run
    (validation refuses those now, but rows saved before may hold them)."""
    if not isinstance(service.headers or {}, dict):
        raise ValueError(
            f"headers must be an object of names to values, not {type(service.headers).__name__}"
        )
    port = service.port or (443 if service.kind == CheckKind.TLS else 0)
    return CheckSpec(
        kind=service.kind,
        timeout=service.timeout_seconds,
        retries=service.retries,
        allow_private=effective_allow_private(service),
        url=service.url,
        method=service.method,
        headers=tuple((str(k), str(v)) for k, v in (service.headers or {}).items()),
        body=service.body,
        follow_redirects=service.follow_redirects,
        verify_tls=service.verify_tls,
        host=service.host,
        port=port,
        dns_name=service.dns_name,
        dns_record_type=service.dns_record_type,
        dns_expected=service.dns_expected,
        dns_server=service.dns_server,
        assertions=Assertions(
            expected_status=tuple(service.expected_status or ()),
            max_response_time_ms=service.max_response_time_ms,
            body_contains=service.body_contains,
            body_not_contains=service.body_not_contains,
            json_path=service.json_path,
            json_expected=service.json_expected,
            cert_min_days=service.cert_min_days,
        ),
    )


def spec_or_failure(service: Service) -> CheckSpec | Outcome:
    """The spec to run, or the `down` outcome to record when the service's configuration
    cannot be turned into one: one broken row must not cost its batch-mates their results."""
    try:
        return spec_for(service)
    except Exception as exc:
        return Outcome.down(f"the check could not be prepared: {exc}")


def observation(
    service_id: str, due: datetime, started_at: datetime, outcome: Outcome
) -> Observation:
    return Observation(
        service_id=service_id,
        due=due,
        started_at=started_at,
        status=outcome.status,
        response_time_ms=outcome.response_time_ms,
        status_code=outcome.status_code,
        error=storable(outcome.error),
        details=storable(outcome.details),
    )


NUL_REPLACEMENT = "\ufffd"


def storable(value: Any) -> Any:
    """`value` with every NUL in its strings (dict keys too) replaced: PostgreSQL's text and
    jsonb cannot hold U+0000, and one such string (a DNS TXT answer, a server's error text)
    would fail the insert of the whole batch."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_REPLACEMENT)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


# timezone.now() with USE_TZ on, without its settings lookup: read for every check started.
_utc_now = functools.partial(datetime.now, UTC)
MAX_EARLY_SECONDS = 5.0  # the dispatcher's lookahead is 1 s; never wait long on a bogus slot


async def _run_on_time(
    planned: Sequence[tuple[CheckSpec, datetime]], concurrency: int, ctx: CheckContext
) -> list[tuple[datetime, Outcome]]:
    """Start each check at its due time (the dispatcher hands slots out slightly ahead), all on
    one event loop sharing connections; returns (actual start, outcome) in input order."""
    # A batch no larger than the concurrency (the dispatcher's usual one) never waits for a
    # slot: it goes without the semaphore, whose every acquire costs.
    semaphore = asyncio.Semaphore(concurrency) if len(planned) > concurrency else None

    async def one(spec: CheckSpec, due: datetime) -> tuple[datetime, Outcome]:
        started = _utc_now()
        delay = (due - started).total_seconds()
        if delay > 0:
            await asyncio.sleep(min(delay, MAX_EARLY_SECONDS))
            started = _utc_now()
        if semaphore is None:
            return started, await run_one(spec, ctx)
        async with semaphore:
            return _utc_now(), await run_one(spec, ctx)

    return list(await asyncio.gather(*(one(spec, due) for spec, due in planned)))


# The cyclic collector's first threshold while a batch runs. At the default (700 allocations
# net of frees) it ran every few checks and mostly walked the live objects of the checks in
# flight (and every so often the worker's whole heap): about a third of the worker path's CPU
# in bench/check_client.py. A batch of 200 checks stays under this many, so it runs at most
# once a batch; cyclic garbage waits at most this many allocations.
BATCH_GC_THRESHOLD = 20_000

_gc_lock = threading.Lock()
_gc_batches = 0  # batches running in this process (threads) under the raised threshold
_gc_saved: tuple[int, int, int] = (0, 0, 0)


@contextlib.contextmanager
def _collector_relaxed() -> Iterator[None]:
    """Raise the collector's first threshold for the block (never lower it), restoring what it
    was once the last batch running in the process ends. Nothing is exempt from collection:
    it runs less often, so that each run is worth its walk."""
    global _gc_batches, _gc_saved
    with _gc_lock:
        if _gc_batches == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(_gc_saved[0], BATCH_GC_THRESHOLD), *_gc_saved[1:])
        _gc_batches += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_batches -= 1
            if _gc_batches == 0:
                gc.set_threshold(*_gc_saved)


# How long a worker keeps one set of HTTP sessions (their pooled keep-alive connections) before
# opening new ones. It bounds how long a connection opened to an address a name no longer
# resolves to can keep serving checks of that name while it stays busy (an idle one is closed
# after aiohttp's 15 s keep-alive anyway); the DNS cache itself lasts 10 s.
CONNECTION_REUSE_SECONDS = 60.0


class _BatchClient:
    """The event loop and the check context (HTTP sessions, DNS resolver) one worker thread
    keeps between batches, so that a batch reuses the connections the batches before it opened
    to the same hosts instead of connecting afresh for every check.

    Per process and thread: a forked pool child starts its own (it never touches the loop or
    the sockets it inherited), and a thread pool gives each thread one. A batch that ends by
    an exception (a soft time limit in the middle of it, say) takes the loop with it: what it
    left running is cancelled with the loop, never resumed by the next batch.
    """

    def __init__(self) -> None:
        self._owner: tuple[int, int] | None = None
        self._runner: asyncio.Runner | None = None
        self._ctx: CheckContext | None = None
        self._since = 0.0

    def run(
        self, planned: Sequence[tuple[CheckSpec, datetime]], concurrency: int
    ) -> list[tuple[datetime, Outcome]]:
        owner = (os.getpid(), threading.get_ident())
        if self._owner != owner:  # inherited through fork: leave the parent's loop alone
            self._owner, self._runner, self._ctx = owner, None, None
        if self._runner is None:
            self._runner = asyncio.Runner(loop_factory=_loop_factory())  # uvloop: cheaper
        if self._ctx is not None and (
            self._ctx.concurrency != concurrency
            or time.monotonic() - self._since > CONNECTION_REUSE_SECONDS
        ):
            self._runner.run(self._ctx.close())
            self._ctx = None
        if self._ctx is None:
            self._ctx, self._since = CheckContext(concurrency=concurrency), time.monotonic()
        try:
            with _collector_relaxed():
                return self._runner.run(_run_on_time(planned, concurrency, self._ctx))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the sessions and the loop (cancelling anything a broken batch left)."""
        runner, ctx = self._runner, self._ctx
        self._runner = self._ctx = None
        if runner is None:
            return
        try:
            if ctx is not None:
                runner.run(ctx.close())
        finally:
            runner.close()


_clients = threading.local()


@atexit.register
def _close_at_exit() -> None:
    client = getattr(_clients, "client", None)
    if client is not None and client._owner == (os.getpid(), threading.get_ident()):
        client.close()


def run_on_time(
    planned: Sequence[tuple[CheckSpec, datetime]], concurrency: int = 200
) -> list[tuple[datetime, Outcome]]:
    client = getattr(_clients, "client", None)
    if client is None:
        client = _clients.client = _BatchClient()
    return client.run(planned, concurrency)


# What running a slot reads of its service: the spec (spec_for), whether it is still enabled and
# whether its next slot is already due (_too_late). No timestamp: loading the six a Service has
# was a twentieth of the check worker's CPU.
RUN_FIELDS = (
    "enabled", "kind", "url", "method", "headers", "body", "follow_redirects", "verify_tls",
    "host", "port", "dns_name", "dns_record_type", "dns_expected", "dns_server",
    "timeout_seconds", "retries", "allow_private", "interval_seconds", "cron",
    "expected_status", "max_response_time_ms", "body_contains", "body_not_contains",
    "json_path", "json_expected", "cert_min_days",
)  # fmt: skip


def run_slots(slots: Sequence[Slot]) -> list[Recorded]:
    """Run one dispatched batch and record it. Slots of services deleted or disabled since
    dispatch are recorded as nothing: their claims are released by the empty observation set.
    A slot older than MAX_RUN_DELAY (a batch the broker delivered again long after, e.g. when a
    worker restarts), or one whose service's next slot is already due, is recorded as missed
    at its time, not run now and dated then."""
    services = Service.objects.only(*RUN_FIELDS).in_bulk([s.service_id for s in slots])
    runnable = [s for s in slots if s.service_id in services and services[s.service_id].enabled]
    prepared_at = timezone.now()
    stale = {s: why for s in runnable if (why := _too_late(services[s.service_id], s, prepared_at))}
    runnable = [s for s in runnable if s not in stale]
    pairs = [(s, spec_or_failure(services[s.service_id])) for s in runnable]
    ran = iter(run_on_time([(spec, s.due) for s, spec in pairs if isinstance(spec, CheckSpec)]))
    observations = []
    for slot, spec in pairs:
        started, outcome = next(ran) if isinstance(spec, CheckSpec) else (prepared_at, spec)
        observations.append(observation(slot.service_id, slot.due, started, outcome))
    observations += [missed_observation(s.service_id, s.due, why) for s, why in stale.items()]
    handled = set(runnable).union(stale)  # a set: slots compare as dataclasses, field by field
    skipped = [s for s in slots if s not in handled]
    if skipped:
        _release(skipped)
    return check_results_record(results=observations)


def _too_late(service: Service, slot: Slot, now: datetime) -> str:
    """Why a slot reaching a worker is recorded missed rather than run ('' to run it): the
    broker delivered its batch again long after (a worker restarted), or the service's next
    slot is already due (run now, it would be off its grid, beside the next one)."""
    if slot.due < now - MAX_RUN_DELAY:
        return f"the batch reached a worker more than {MAX_RUN_DELAY} after its slot"
    if superseded(service, slot.due, now):
        return "the batch reached a worker after the service's next slot was due"
    return ""


def _release(slots: Sequence[Slot]) -> None:
    from services.models import CheckClaim

    for slot in slots:
        CheckClaim.objects.filter(service_id=slot.service_id, slot=slot.due).delete()


def check_now(service: Service) -> Recorded | None:
    """Run a service's check at once (outside its schedule) and record the result. None: the
    service is gone, and nothing was written.

    The result is dated when its check started, or just after the service's latest result if
    that is later: concurrent checks of one service finish in any order, and a result dated
    before the latest would be written without counting in the service's state (its failure
    streak, so its incident). Dated under the service's row lock, each result written is
    counted, in the order written, and is the answer of the call that ran it."""
    started = timezone.now()
    spec = spec_or_failure(service)
    outcome = run_batch_sync([spec])[0] if isinstance(spec, CheckSpec) else spec
    with transaction.atomic():
        latest = (
            Service.objects.select_for_update().filter(pk=service.pk).values_list("last_slot")
        ).first()
        if latest is None:
            return None
        due = started if latest[0] is None else max(started, latest[0] + RESOLUTION)
        recorded = check_results_record(
            results=[observation(service.id, due, started, outcome)], claimed=False
        )
    return recorded[0] if recorded else None
