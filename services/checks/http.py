"""HTTP(S) checks: one request through the batch's shared aiohttp session."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from aiohttp.connector import Connection

from services.checks.assertions import evaluate_http
from services.checks.certificates import PeerCertificate
from services.checks.guard import check_address, literal_ip
from services.checks.spec import Assertions, CheckSpec, Outcome, elapsed_ms

if TYPE_CHECKING:
    from services.checks.context import CheckContext

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_REDIRECTS",
    "USER_AGENT",
    "ProbeResponse",
    "drain",
    "read_body",
    "run_http",
]

USER_AGENT = "NOC-Monitor/0.1 (+https://github.com/noc)"
MAX_REDIRECTS = 10
MAX_BODY_BYTES = 1 << 20  # enough for any health page; a large download is not a check


class ProbeResponse(aiohttp.ClientResponse):
    """A response that remembers who answered it.

    aiohttp hands the connection back to the pool as soon as a small body has arrived, so the
    peer address and certificate are read when the response starts, while it is still ours.
    """

    peer_address: str | None = None
    peer_cert_der: bytes | None = None

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        transport = connection.transport
        if transport is not None:
            peername = transport.get_extra_info("peername")
            self.peer_address = str(peername[0]) if peername else None
            ssl_object = transport.get_extra_info("ssl_object")
            # The binary form is given even for an unverified peer (verify_tls off).
            self.peer_cert_der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        return await super().start(connection)


async def run_http(spec: CheckSpec, ctx: CheckContext) -> Outcome:
    """One request within the caller's deadline (`run_attempt`'s `asyncio.timeout` bounds the
    whole attempt, body included: a second, aiohttp-level timer per request would only cost)."""
    _check_literal_target(spec)
    session = ctx.http_session(allow_private=spec.allow_private)
    assertions = spec.assertions
    started = time.perf_counter()
    async with session.request(
        spec.method.upper() or "GET",
        spec.url,
        # The session sends USER_AGENT by default; a spec's own headers are merged here.
        headers=request_headers(spec) if spec.headers else None,
        data=spec.body.encode() if spec.body else None,
        allow_redirects=spec.follow_redirects,
        max_redirects=MAX_REDIRECTS,
        ssl=_ssl_setting(spec, ctx),
    ) as response:
        response_time = elapsed_ms(started)
        body = await read_body(response) if _reads_body(assertions) else await drain(response)
    cert = _certificate(response) if _wants_certificate(spec, response) else None
    details = _details(response, cert)
    status, error = evaluate_http(
        assertions,
        status_code=response.status,
        elapsed_ms=response_time,
        body=body,
        cert_days_left=cert.days_left if cert else None,
    )
    return Outcome(status, response_time, response.status, error, details)


def _check_literal_target(spec: CheckSpec) -> None:
    """Refuse an IP-literal URL before any I/O (the connector would refuse it too, later)."""
    ip = literal_ip(urlsplit(spec.url).hostname or "")
    if ip is not None:
        check_address(ip, allow_private=spec.allow_private)


def _reads_body(assertions: Assertions) -> bool:
    return bool(assertions.body_contains or assertions.body_not_contains or assertions.json_path)


def request_headers(spec: CheckSpec) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT}
    for name, value in spec.headers:
        # Header names are case-insensitive: a spec's "user-agent" replaces ours.
        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        headers[name] = value
    return headers


def _ssl_setting(spec: CheckSpec, ctx: CheckContext) -> object:
    if not spec.verify_tls:
        return False
    return ctx.ssl_context if ctx.ssl_context is not None else True


def _wants_certificate(spec: CheckSpec, response: aiohttp.ClientResponse) -> bool:
    return spec.assertions.cert_min_days is not None and response.url.scheme == "https"


def _certificate(response: aiohttp.ClientResponse) -> PeerCertificate | None:
    der = getattr(response, "peer_cert_der", None)
    return PeerCertificate(der) if der else None


def _details(response: aiohttp.ClientResponse, cert: PeerCertificate | None) -> dict:
    details: dict = {}
    address = getattr(response, "peer_address", None)
    if address:
        details["address"] = address
    if response.history:
        details["redirects"] = len(response.history)
        details["final_url"] = str(response.url)[:500]
    if cert:
        details["cert_days_left"] = cert.days_left
        details["cert_not_after"] = cert.not_after.isoformat()
    return details


async def drain(response: aiohttp.ClientResponse) -> str:
    """Read and drop at most MAX_BODY_BYTES of a body no assertion looks at, so that its
    connection goes back to the pool (a small body has usually arrived with the headers, and
    then there is nothing to wait for). Returns "": the body, as far as assertions go."""
    content = response.content
    size = 0
    while not content.is_eof() and size < MAX_BODY_BYTES:
        chunk = await content.readany()
        if not chunk:
            break
        size += len(chunk)
    return ""


async def read_body(response: aiohttp.ClientResponse) -> str:
    """At most MAX_BODY_BYTES of the body, decoded leniently: assertions need text, not bytes."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY_BYTES:
        chunk = await response.content.read(MAX_BODY_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    raw = b"".join(chunks)
    try:
        return raw.decode(response.charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset in Content-Type
        return raw.decode("utf-8", errors="replace")
