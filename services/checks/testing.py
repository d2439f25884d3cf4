"""Real local servers for exercising the engines: HTTP(S), raw TLS, TCP and UDP DNS.

Used by the engine tests (and usable from `bench/`): each server runs in a background thread
on 127.0.0.1 and an ephemeral port, so tests talk to real sockets without mocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.checks.context import CheckContext
from services.checks.engine import run_one
from services.checks.spec import CheckSpec, Outcome

__all__ = [
    "DnsServer",
    "HttpServer",
    "check_once",
    "closed_port",
    "make_app",
    "serve_dns",
    "serve_http",
    "serve_tcp",
    "tls_certificates",
]


def check_once(spec: CheckSpec, *, ssl_context: ssl.SSLContext | None = None) -> Outcome:
    """`run_one(spec)` on a fresh event loop; `ssl_context` is the trust used to verify TLS."""

    async def run() -> Outcome:
        async with CheckContext(ssl_context=ssl_context) as ctx:
            return await run_one(spec, ctx)

    return asyncio.run(run())


# -- HTTP ---------------------------------------------------------------------------------------


CALLS = web.AppKey("calls", Counter)  # requests seen per /flaky/{key}
PEERS = web.AppKey("peers", set)  # client (address, port) pairs seen by /peer: connections


def make_app() -> web.Application:
    """Endpoints for every behaviour the HTTP engine must tell apart."""
    app = web.Application()
    app[CALLS] = Counter()
    app[PEERS] = set()
    app.router.add_get("/ok", _ok)
    app.router.add_get("/slow", _slow)
    app.router.add_route("*", "/status/{code}", _status)
    app.router.add_get("/redirect/{hops}", _redirect)
    app.router.add_get("/redirect-to", _redirect_to)
    app.router.add_get("/text", _text)
    app.router.add_get("/flaky/{key}", _flaky)
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/peer", _peer)
    app.router.add_get("/stream", _stream)
    return app


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "checks": {"db": True, "queue": 3}})


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "1")))
    return web.json_response({"status": "ok"})


async def _status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="status page")


async def _redirect(request: web.Request) -> web.Response:
    hops = int(request.match_info["hops"])
    raise web.HTTPFound("/ok" if hops <= 1 else f"/redirect/{hops - 1}")


async def _redirect_to(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["url"])


async def _text(request: web.Request) -> web.Response:
    return web.Response(text="<html><body>Welcome to the NOC. All systems nominal.</body></html>")


async def _flaky(request: web.Request) -> web.Response:
    """Fails the first `fail` calls for each key, then succeeds."""
    key = request.match_info["key"]
    request.app[CALLS][key] += 1
    if request.app[CALLS][key] <= int(request.query.get("fail", "1")):
        return web.Response(status=503, text="warming up")
    return web.json_response({"status": "ok", "calls": request.app[CALLS][key]})


async def _peer(request: web.Request) -> web.Response:
    request.app[PEERS].add(request.transport.get_extra_info("peername"))
    return web.json_response({"status": "ok"})


async def _stream(request: web.Request) -> web.StreamResponse:
    """`chunks` chunks of `size` bytes, `pause` seconds apart: a body that arrives after its
    headers (the connection is recorded in PEERS, as /peer does)."""
    request.app[PEERS].add(request.transport.get_extra_info("peername"))
    response = web.StreamResponse()
    await response.prepare(request)
    chunk = b"x" * int(request.query.get("size", "65536"))
    for _ in range(int(request.query.get("chunks", "4"))):
        await asyncio.sleep(float(request.query.get("pause", "0.05")))
        await response.write(chunk)
    await response.write_eof()
    return response


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "headers": dict(request.headers),
            "body": await request.text(),
        }
    )


@dataclass
class HttpServer:
    port: int
    scheme: str
    app: web.Application

    def url(self, path: str = "/ok", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


@contextlib.contextmanager
def serve_http(ssl_context: ssl.SSLContext | None = None) -> Iterator[HttpServer]:
    """`make_app()` on 127.0.0.1, over TLS when `ssl_context` is given."""
    app = make_app()
    with _LoopThread() as loop:
        runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
        asyncio.run_coroutine_threadsafe(runner.setup(), loop).result(5)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        asyncio.run_coroutine_threadsafe(site.start(), loop).result(5)
        try:
            port = runner.addresses[0][1]
            yield HttpServer(port, "https" if ssl_context else "http", app)
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)


class _LoopThread:
    """An asyncio event loop running in a daemon thread for the duration of a `with`."""

    def __enter__(self) -> asyncio.AbstractEventLoop:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return self.loop

    def __exit__(self, *exc: object) -> None:
        # Finish what the server started (handlers, closing transports) before stopping.
        asyncio.run_coroutine_threadsafe(_drain(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def _drain() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.01)  # lets transports closed by the handlers finish closing


# -- TCP ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def serve_tcp(ssl_context: ssl.SSLContext | None = None) -> Iterator[int]:
    """A listener that accepts (with `ssl_context`, handshakes) then hangs up; yields its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    with _LoopThread() as loop:

        async def start() -> asyncio.Server:
            return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)

        server = asyncio.run_coroutine_threadsafe(start(), loop).result(5)
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            asyncio.run_coroutine_threadsafe(_close_server(server), loop).result(5)


async def _close_server(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- TLS certificates ---------------------------------------------------------------------------


@dataclass
class TlsCertificates:
    """A test CA, a server context presenting a leaf it issued, and a client trusting it."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def tls_certificates(
    *,
    valid_days: float | None = None,
    self_signed: bool = False,
    identities: tuple[str, ...] = ("127.0.0.1", "localhost"),
) -> TlsCertificates:
    """Certificates for `identities` (default 127.0.0.1 and localhost).

    `valid_days` makes a leaf that expires that many days from now; `self_signed` makes the
    leaf its own issuer (what a forgotten appliance presents).
    """
    import trustme  # a test dependency: imported only when a test asks for certificates

    ca = trustme.CA()
    not_after = None
    if valid_days is not None:
        not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=valid_days)
    leaf = ca.issue_cert(*identities, not_after=not_after)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if self_signed:
        _load_self_signed(server)
    else:
        leaf.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return TlsCertificates(server=server, client=client)


def _load_self_signed(context: ssl.SSLContext) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with tempfile.NamedTemporaryFile(suffix=".pem") as file:
        file.write(pem)
        file.flush()
        context.load_cert_chain(file.name)


# -- DNS ----------------------------------------------------------------------------------------


@dataclass
class DnsServer:
    """A UDP DNS server answering from `records`: {(name, type): [rdata text, ...]}."""

    records: dict[tuple[str, str], list[str]]
    port: int = 0
    queries: int = 0
    _sock: socket.socket = field(init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self._sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.queries += 1
            self._sock.sendto(self.answer(wire), client)

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        if not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif (name, rdtype) in self.records:
            values = self.records[(name, rdtype)]
            rrset = dns.rrset.from_text_list(question.name, 60, "IN", rdtype, values)
            response.answer.append(rrset)
        return response.to_wire()


@contextlib.contextmanager
def serve_dns(records: dict[tuple[str, str], list[str]]) -> Iterator[DnsServer]:
    server = DnsServer({(n.rstrip(".").lower(), t.upper()): v for (n, t), v in records.items()})
    server._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server._sock.bind(("127.0.0.1", 0))
    server._sock.settimeout(0.1)  # lets the loop notice the stop flag
    server.port = server._sock.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server._stop.set()
        thread.join(5)
        server._sock.close()
