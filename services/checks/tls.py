"""TLS checks: handshake with host:port, verify the certificate and report how long it has left."""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from typing import TYPE_CHECKING

from services.checks.assertions import cert_error, evaluate_response_time
from services.checks.certificates import PeerCertificate, peer_certificate
from services.checks.guard import resolve_checked
from services.checks.spec import CheckSpec, Outcome, elapsed_ms
from services.checks.tcp import connect_first, port_error

if TYPE_CHECKING:
    from services.checks.context import CheckContext

__all__ = ["run_tls"]

DEFAULT_PORT = 443
# After a verification failure a second, unverified handshake reads the expiry date; it gets
# a small share of the budget so that it never turns the real error into a timeout.
EXPIRY_PEEK_SECONDS = 1.0


async def run_tls(spec: CheckSpec, ctx: CheckContext) -> Outcome:
    port = spec.port or DEFAULT_PORT
    invalid = port_error(port)
    if invalid:
        return Outcome.down(invalid)
    started = time.perf_counter()
    addresses = await resolve_checked(spec.host, port, allow_private=spec.allow_private)
    try:
        address, cert, version = await _handshake(spec, addresses, port, _context(spec, ctx))
    except ssl.SSLCertVerificationError as exc:
        return await _verify_failed(spec, addresses, port, exc)
    response_time = elapsed_ms(started)
    details = {"address": address, "tls_version": version, **_cert_details(cert)}
    expiring = cert_error(spec.assertions.cert_min_days, cert.days_left if cert else None)
    if expiring:
        return Outcome.down(expiring, response_time_ms=response_time, details=details)
    status, error = evaluate_response_time(spec.assertions, response_time)
    return Outcome(status, response_time, None, error, details)


async def _handshake(
    spec: CheckSpec, addresses: list[str], port: int, context: ssl.SSLContext
) -> tuple[str, PeerCertificate | None, str]:
    # server_hostname: SNI and name verification use the configured name, while the socket
    # goes to the address the guard checked.
    address, _, writer = await connect_first(
        addresses, port, ssl=context, server_hostname=spec.host.strip("[]")
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return address, peer_certificate(ssl_object), ssl_object.version() or ""
    finally:
        writer.transport.abort()  # a probe owes the server no orderly TLS shutdown


async def _verify_failed(
    spec: CheckSpec, addresses: list[str], port: int, exc: ssl.SSLCertVerificationError
) -> Outcome:
    details: dict = {}
    try:
        async with asyncio.timeout(min(EXPIRY_PEEK_SECONDS, spec.timeout / 4)):
            _, cert, _ = await _handshake(spec, addresses, port, _unverified_context())
        details = _cert_details(cert)
    except (OSError, TimeoutError):
        pass  # the verification failure is the news; the expiry date is a bonus
    return Outcome.down(
        f"certificate verify failed: {exc.verify_message or exc.reason}", details=details
    )


def _cert_details(cert: PeerCertificate | None) -> dict:
    if cert is None:
        return {}
    return {
        "cert_days_left": cert.days_left,
        "cert_not_after": cert.not_after.isoformat(),
        "cert_subject": cert.subject[:200],
        "cert_issuer": cert.issuer[:200],
    }


def _context(spec: CheckSpec, ctx: CheckContext) -> ssl.SSLContext:
    if not spec.verify_tls:
        return _unverified_context()
    return ctx.ssl_context or _default_context()


@functools.cache
def _default_context() -> ssl.SSLContext:
    # Loading the system CA store costs milliseconds: once per process, not per check.
    return ssl.create_default_context()


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
