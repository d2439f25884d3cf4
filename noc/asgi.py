"""The web entry point (`uvicorn noc.asgi:application`): push pings are answered on the event
loop with group commit, every other request by Django's WSGI handler in a thread pool.

Pings are the one path a whole fleet calls many times a second (README, "Push pings"): a
Django request costs ~0.8 ms of CPU before a view runs, more than 2,000 pings/s on two cores
can afford. So `/ping/<uuid>[/fail|/start]` is recognised here, before Django: success pings
go to services.ping_commit (one statement and one durable commit for the pings that arrive
together), everything else about a ping (failures, starts, recoveries, maintenance, unknown
tokens) to services.actions.push_ping_record in a thread, as the Django view does. Anything
this module does not handle plainly (a host not allowed, a request to redirect to HTTPS, a
method other than GET/HEAD/POST, a malformed path) goes to Django, which answers it as
before. `noc.wsgi` still serves the whole site, pings included, under any WSGI server.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "noc.settings")

from django.core.wsgi import get_wsgi_application

django_application = get_wsgi_application()  # sets Django up

# Ingestion decodes thousands of small objects a request (a dict of labels per point): at the
# default threshold (700 allocations) the cyclic collector took about 40 % of a batch's decode
# CPU (bench/ingest.py). What start-up made is frozen out of its scans, and it runs every
# 50,000 allocations: collections stay frequent, each costs less than the work it interrupts.
gc.freeze()
gc.set_threshold(50_000, 20, 100)

import psycopg  # noqa: E402
from a2wsgi import WSGIMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import DatabaseError, close_old_connections, connections  # noqa: E402
from django.http.request import split_domain_port, validate_host  # noqa: E402
from django.utils import timezone  # noqa: E402

from services.actions import UnknownPingToken, push_ping_record  # noqa: E402
from services.ping import BODY_BYTES, BODY_CHARS  # noqa: E402
from services.ping_commit import PingCommitter  # noqa: E402

logger = logging.getLogger(__name__)

PING_PATH = re.compile(
    r"/ping/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:/(fail|start))?",
    re.IGNORECASE,  # UUIDs are case-insensitive
)
PING_METHODS = ("GET", "HEAD", "POST")
REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
DJANGO_THREADS = 8  # requests to Django at once in one process (gthread's 4 threads × 2)
GENERAL_PING_THREADS = 4  # pings that take the general path at once in one process
HOSTS_REMEMBERED = 64
# Connection options of Django's that are not libpq parameters.
NOT_LIBPQ = {"cursor_factory", "context", "prepare_threshold", "server_side_binding", "pool"}


def _security_headers() -> list[tuple[bytes, bytes]]:
    """What Django's security and clickjacking middleware add to a plain response."""
    headers = [(b"x-frame-options", settings.X_FRAME_OPTIONS.encode())]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        policy = policy if isinstance(policy, str) else ",".join(policy)
        headers.append((b"referrer-policy", policy.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(
            (b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode())
        )
    return headers


def _hsts_header() -> list[tuple[bytes, bytes]]:
    if not settings.SECURE_HSTS_SECONDS:
        return []
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return [(b"strict-transport-security", value.encode())]


async def _connect() -> psycopg.AsyncConnection:
    django_params = connections["default"].get_connection_params()
    params = {k: v for k, v in django_params.items() if k not in NOT_LIBPQ}
    return await psycopg.AsyncConnection.connect(autocommit=True, **params)


def _general_ping(token: uuid.UUID, outcome: str, at, body: str) -> str:
    """The Django view's path, in a thread: each call as a request would (old connections go)."""
    close_old_connections()
    try:
        return push_ping_record(token=token, outcome=outcome, now=at, body=body, fast=False)
    finally:
        close_old_connections()


class Front:
    """The ASGI application: pings here, the rest to Django."""

    def __init__(self, django_app) -> None:
        self.django = WSGIMiddleware(django_app, workers=DJANGO_THREADS)
        self.committer = PingCommitter(_connect)
        self.general = ThreadPoolExecutor(GENERAL_PING_THREADS, thread_name_prefix="ping")
        self.headers = _security_headers()
        self.hsts = _hsts_header()
        self.allowed_hosts = settings.ALLOWED_HOSTS
        if settings.DEBUG and not self.allowed_hosts:
            self.allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]  # as Django's get_host
        self.host_header = b"x-forwarded-host" if settings.USE_X_FORWARDED_HOST else b"host"
        self.hosts_seen: dict[bytes, bool] = {}  # Host header → allowed (they are few)
        self.ssl_redirect = settings.SECURE_SSL_REDIRECT

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            match = PING_PATH.fullmatch(scope["path"])
            if match and scope["method"] in PING_METHODS and self._plain(scope):
                token = uuid.UUID(match[1])
                await self.ping(scope, receive, send, token, match[2] or "success")
                return
            await self.django(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        else:
            await self.django(scope, receive, send)

    def _plain(self, scope) -> bool:
        """A request Django would not redirect or refuse before the view."""
        headers = dict(scope["headers"])
        host = headers.get(self.host_header, headers.get(b"host", b""))
        allowed = self.hosts_seen.get(host)
        if allowed is None:
            allowed = self._host_allowed(host.decode("latin-1"))
            if len(self.hosts_seen) < HOSTS_REMEMBERED:
                self.hosts_seen[host] = allowed
        if not allowed:
            return False
        return not self.ssl_redirect or self._secure(scope, headers)

    def _host_allowed(self, host: str) -> bool:
        domain, _ = split_domain_port(host.rsplit(",", 1)[-1].strip())
        return bool(domain) and validate_host(domain, self.allowed_hosts)

    @staticmethod
    def _secure(scope, headers: dict[bytes, bytes]) -> bool:
        if settings.SECURE_PROXY_SSL_HEADER:
            name, value = settings.SECURE_PROXY_SSL_HEADER
            header = name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
            return headers.get(header, b"").split(b",")[0].strip() == value.encode("latin-1")
        return scope.get("scheme") == "https"

    async def ping(self, scope, receive, send, token: uuid.UUID, outcome: str) -> None:
        at = timezone.now()
        body = await _body(receive) if scope["method"] == "POST" else ""
        try:
            service_id = None
            if outcome == "success":
                service_id = await self.committer.record_success(token, at, body)
            if service_id is None:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(
                    self.general, partial(_general_ping, token, outcome, at, body)
                )
        except UnknownPingToken:
            await self.answer(scope, send, 404, b"not found")
        except (DatabaseError, psycopg.Error) as exc:
            logger.warning("ping not recorded: %s", exc)
            await self.answer(scope, send, 503, b"database unavailable, try again")
        else:
            await self.answer(scope, send, 200, b"OK")

    async def answer(self, scope, send, status: int, content: bytes) -> None:
        request_id = _request_id(scope)
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(content)).encode()),
            (b"x-request-id", request_id),
            *self.headers,
        ]
        if self.hsts and self._secure(scope, dict(scope["headers"])):
            headers += self.hsts
        await send({"type": "http.response.start", "status": status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else content
        await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.committer.close()
                self.general.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def close(self) -> None:
        """Stop the writers and close every connection the ping threads opened (tests: a
        process that exits closes them anyway)."""
        await self.committer.close()
        barrier = threading.Barrier(GENERAL_PING_THREADS)

        def close_connections() -> None:
            connections.close_all()
            barrier.wait(timeout=10)  # so that each thread of the pool runs this once

        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self.general, close_connections) for _ in range(barrier.parties))
        )
        self.general.shutdown(wait=True)


def _request_id(scope) -> bytes:
    """The caller's X-Request-ID when well-formed, else a new one (as RequestContextMiddleware)."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value if REQUEST_ID.fullmatch(value) else uuid.uuid4().hex.encode()
    return uuid.uuid4().hex.encode()


async def _body(receive) -> str:
    """The first BODY_CHARS characters of a posted body, as the Django view keeps them."""
    chunks, size = [], 0
    while size < BODY_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            break
    data = b"".join(chunks)[:BODY_BYTES]
    return data.decode("utf-8", errors="replace")[:BODY_CHARS].replace("\x00", "")


application = Front(django_application)
