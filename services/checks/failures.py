"""Turn the exceptions a check can raise into the short message an operator reads."""

from __future__ import annotations

import errno
import socket
import ssl

import aiohttp

from services.checks.guard import AddressRefused

__all__ = ["cause_chain", "describe_error", "describe_timeout", "find_refusal"]


def describe_timeout(timeout: float) -> str:
    seconds = f"{timeout:.1f}" if round(timeout, 1) == timeout else f"{timeout:g}"
    return f"timeout after {seconds}s"


def describe_error(exc: BaseException, *, timeout: float) -> str:
    """A short human message for `exc`, looking through aiohttp's wrappers for the cause."""
    # The guard's refusal is the most useful thing to say, wherever it is in the chain.
    refused = find_refusal(exc)
    if refused is not None:
        return str(refused)
    for cause in reversed(cause_chain(exc)):  # innermost first: the most specific wins
        message = _describe_one(cause, timeout=timeout)
        if message:
            return message
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def find_refusal(exc: BaseException) -> AddressRefused | None:
    return next((e for e in cause_chain(exc) if isinstance(e, AddressRefused)), None)


def cause_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps, outermost first (aiohttp keeps the cause in attributes)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = (
            getattr(current, "certificate_error", None)
            or getattr(current, "os_error", None)
            or current.__cause__
            or (None if current.__suppress_context__ else current.__context__)
        )
    return chain


def _describe_one(exc: BaseException, *, timeout: float) -> str | None:
    if isinstance(exc, TimeoutError):
        return describe_timeout(timeout)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed: {exc.strerror or exc}"
    return _describe_http(exc) or _describe_os(exc)


def _describe_http(exc: BaseException) -> str | None:
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL: {exc}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"bad response: {exc.message}"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"bad response body: {exc}"
    return None


def _describe_os(exc: BaseException) -> str | None:
    if not isinstance(exc, OSError) or isinstance(exc, aiohttp.ClientError):
        return None  # aiohttp's wrappers say "Cannot connect to host…": describe the cause
    # By errno, not class: happy eyeballs folds one refusal per address into a plain OSError.
    known = _ERRNO_MESSAGES.get(exc.errno) if exc.errno is not None else None
    return known or exc.strerror or str(exc) or type(exc).__name__


_ERRNO_MESSAGES = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}
