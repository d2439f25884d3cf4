"""Fetching collector targets: many at once on one event loop, each at its slot's time, through
the same address guard as checks and webhooks, with a timeout and a body size limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from services.checks.engine import _loop_factory
from services.checks.failures import describe_error
from services.checks.guard import GuardedResolver, guarded_socket_factory

MAX_EARLY_SECONDS = 5.0  # the dispatcher hands slots out 1 s ahead; never wait long on one
USER_AGENT = "noc-collector/1"
ACCEPT = {
    "prometheus": "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",  # noqa: E501
    "http_json": "application/json",
    "ohlcv": "application/json",
}


@dataclass(frozen=True)
class Target:
    url: str
    kind: str
    timeout: float
    max_bytes: int
    allow_private: bool
    token: str = ""
    due: float = 0.0  # Unix time of the slot: the fetch starts then, not before


@dataclass
class Fetched:
    body: bytes | None = None
    content_type: str = ""
    error: str = ""
    started: float = 0.0  # Unix time the request started


class BodyTooLarge(Exception):
    pass


async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise BodyTooLarge(f"the body ({response.content_length:,} bytes) is over {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(65_536):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _fetch(session: aiohttp.ClientSession, target: Target) -> Fetched:
    delay = target.due - time.time()
    if delay > 0:
        await asyncio.sleep(min(delay, MAX_EARLY_SECONDS))
    fetched = Fetched(started=time.time())
    headers = {"Accept": ACCEPT.get(target.kind, "*/*"), "User-Agent": USER_AGENT}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    try:
        async with session.get(
            target.url, headers=headers, timeout=aiohttp.ClientTimeout(total=target.timeout)
        ) as response:
            if response.status >= 400:
                fetched.error = f"the target answered HTTP {response.status}"
                return fetched
            fetched.body = await _read(response, target.max_bytes)
            fetched.content_type = response.headers.get("Content-Type", "")
    except BodyTooLarge as exc:
        fetched.error = str(exc)
    except TimeoutError:
        fetched.error = f"no complete answer within {target.timeout:g} s"
    except Exception as exc:  # every other failure is this target's error, never the batch's
        fetched.error = describe_error(exc, timeout=target.timeout)
    return fetched


def _session(allow_private: bool, concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allow_private=allow_private),
        socket_factory=guarded_socket_factory(allow_private=allow_private),
        limit=concurrency,
    )
    # trust_env=False: a proxy from the environment would connect where the guard never looked.
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )


async def fetch_all(targets: Sequence[Target], concurrency: int = 200) -> list[Fetched]:
    """Fetch every target (in input order), connections reused per guard setting."""
    sessions = {flag: _session(flag, concurrency) for flag in {t.allow_private for t in targets}}
    semaphore = asyncio.Semaphore(concurrency)

    async def one(target: Target) -> Fetched:
        async with semaphore:
            return await _fetch(sessions[target.allow_private], target)

    try:
        return list(await asyncio.gather(*(one(t) for t in targets)))
    finally:
        for session in sessions.values():
            await session.close()


def fetch_all_sync(targets: Sequence[Target], concurrency: int = 200) -> list[Fetched]:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(fetch_all(targets, concurrency))
