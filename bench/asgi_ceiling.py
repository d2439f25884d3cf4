"""The most Python does here for a ping: a minimal ASGI app (run by bench/pings.py under uvicorn)
that answers `/ping/<token>` with one single-row UPDATE and a durable commit per request,
through an async psycopg pool, and nothing else: no Django, no result row, no validation.

    DATABASE_URL=postgresql://… uvicorn bench.asgi_ceiling:app --workers 2
"""

from __future__ import annotations

import os

from psycopg_pool import AsyncConnectionPool

UPDATE = "UPDATE services_service SET last_ping_at = now() WHERE ping_token = %s"
POOL_SIZE = 8

_pool: AsyncConnectionPool | None = None


async def _get_pool() -> AsyncConnectionPool:
    global _pool
    if _pool is None:
        _pool = AsyncConnectionPool(
            os.environ["DATABASE_URL"],
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True},  # each UPDATE commits (durably) on its own
            open=False,
        )
        await _pool.open()
    return _pool


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        if _pool is not None:
            await _pool.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    token = scope["path"].removeprefix("/ping/")
    pool = await _get_pool()
    async with pool.connection() as connection:
        cursor = await connection.execute(UPDATE, [token], prepare=True)
        found = cursor.rowcount == 1
    status, body = (200, b"OK") if found else (404, b"not found")
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
