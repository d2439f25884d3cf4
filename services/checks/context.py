"""What the checks of one batch share: HTTP sessions (connection reuse) and DNS resolvers."""

from __future__ import annotations

import ssl
from types import TracebackType

import aiohttp
import dns.asyncresolver

from services.checks.guard import GuardedResolver, guarded_socket_factory
from services.checks.http import USER_AGENT, ProbeResponse

__all__ = ["CheckContext"]

DNS_CACHE_SECONDS = 10  # short: a batch is short, and a moved service must be seen moving


class CheckContext:
    """Shared clients for a batch, created on first use and closed on exit.

    One HTTP session per `allow_private` value, because the guard lives in the connector's
    resolver: a connection pooled for a service that may reach private networks must never be
    handed to one that may not. Use as `async with CheckContext() as ctx: ...`.
    """

    def __init__(self, *, concurrency: int = 200, ssl_context: ssl.SSLContext | None = None):
        self.concurrency = concurrency
        # Trust used when a check verifies TLS; None = the system's CA store.
        self.ssl_context = ssl_context
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._system_resolver: dns.asyncresolver.Resolver | None = None

    async def __aenter__(self) -> CheckContext:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def http_session(self, *, allow_private: bool) -> aiohttp.ClientSession:
        if allow_private not in self._sessions:
            self._sessions[allow_private] = self._new_session(allow_private)
        return self._sessions[allow_private]

    def _new_session(self, allow_private: bool) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.concurrency,
            resolver=GuardedResolver(allow_private=allow_private),
            socket_factory=guarded_socket_factory(allow_private=allow_private),
            ttl_dns_cache=DNS_CACHE_SECONDS,
        )
        return aiohttp.ClientSession(
            connector=connector,
            # Services must not see each other's cookies, and a proxy from the environment
            # would connect on our behalf to addresses the guard never saw.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            # No aiohttp timer: run_attempt's asyncio.timeout bounds each check.
            timeout=aiohttp.ClientTimeout(total=None),
            headers={"User-Agent": USER_AGENT},
            response_class=ProbeResponse,
        )

    def dns_resolver(self) -> dns.asyncresolver.Resolver:
        """The system resolver (reads /etc/resolv.conf once per batch)."""
        if self._system_resolver is None:
            self._system_resolver = dns.asyncresolver.Resolver()
        return self._system_resolver

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
