"""TCP checks: can a connection be opened to host:port, and how fast."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from services.checks.assertions import evaluate_response_time
from services.checks.guard import resolve_checked
from services.checks.spec import CheckSpec, Outcome, elapsed_ms

if TYPE_CHECKING:
    from services.checks.context import CheckContext

__all__ = ["connect_first", "port_error", "run_tcp"]


async def run_tcp(spec: CheckSpec, ctx: CheckContext) -> Outcome:
    invalid = port_error(spec.port)
    if invalid:
        return Outcome.down(invalid)
    started = time.perf_counter()
    addresses = await resolve_checked(spec.host, spec.port, allow_private=spec.allow_private)
    address, _, writer = await connect_first(addresses, spec.port)
    response_time = elapsed_ms(started)
    writer.close()
    status, error = evaluate_response_time(spec.assertions, response_time)
    return Outcome(status, response_time, None, error, {"address": address})


def port_error(port: int) -> str | None:
    return None if 0 < port < 65536 else f"invalid port {port}"


async def connect_first(
    addresses: list[str], port: int, **kwargs: object
) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the first checked address that accepts, in resolver order.

    Only ever connects to an address from `addresses`, never to a name: the guard has
    checked exactly these.
    """
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            reader, writer = await asyncio.open_connection(address, port, **kwargs)
        except OSError as exc:
            error = exc
            continue
        return address, reader, writer
    raise error
