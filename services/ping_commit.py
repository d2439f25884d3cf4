"""Group commit of push pings on an event loop: the success pings that arrive together are
recorded by one statement, in one transaction with one WAL flush, and each is answered only
after that commit returned (so every 2xx is durable, as with one commit per ping).

A few writers run on the loop, each with its own connection in autocommit mode: the
statement is its own transaction, and psycopg returns its rows only once PostgreSQL has
committed it. While one writer waits for its commit, the pings arriving meanwhile queue, and
the next free writer takes them all (distinct tokens, up to MAX_GROUP): under light load a
ping is committed alone at once; under heavy load the groups grow and the commits per second
stay few. A ping the statement does not record (a failure, a recovery, maintenance, an
unknown token, or any database error) is answered None, and the caller takes the general
path (services.actions.push_ping_record) for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg

from services.actions import PINGS_SUCCESS_FAST, push_success_fast_params

logger = logging.getLogger(__name__)

MAX_GROUP = 512
WRITERS = 4

Connect = Callable[[], Awaitable[psycopg.AsyncConnection]]


@dataclass(frozen=True)
class _Pending:
    token: UUID
    at: datetime
    body: str
    answer: asyncio.Future


class PingCommitter:
    """Records success pings in groups; `record_success` answers once the group committed."""

    def __init__(self, connect: Connect, *, writers: int = WRITERS, max_group: int = MAX_GROUP):
        self._connect = connect
        self._writers = writers
        self._max_group = max_group
        self._pending: deque[_Pending] = deque()
        self._in_flight: set[UUID] = set()  # tokens of the groups being committed
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._failing = False
        self.groups = 0  # committed groups and pings, for the benchmark and tests
        self.pings = 0

    async def record_success(self, token: UUID, at: datetime, body: str = "") -> str | None:
        """The service id once the ping is committed, or None: take the general path."""
        self._start()
        answer = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(token, at, body, answer))
        self._wake.set()
        return await answer

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _start(self) -> None:
        if self._tasks:
            return
        self._wake = asyncio.Event()
        self._tasks = [asyncio.create_task(self._writer()) for _ in range(self._writers)]

    def _take(self) -> list[_Pending]:
        """Up to max_group pending pings with distinct tokens, oldest first. A second ping of
        one token, or one whose token is in a group still committing, waits for a later
        group: one statement updates a service row once, and a service's pings are recorded
        in the order they came (a later ping committed first would send the earlier one the
        general way, as a late slot)."""
        group: list[_Pending] = []
        later: deque[_Pending] = deque()
        while self._pending and len(group) < self._max_group:
            pending = self._pending.popleft()
            if pending.token in self._in_flight:
                later.append(pending)
            else:
                self._in_flight.add(pending.token)
                group.append(pending)
        later.extend(self._pending)
        self._pending = later
        if not self._pending or len(group) < self._max_group:
            self._wake.clear()  # set again when pings arrive or a group finishes
        return group

    def _finish(self, group: list[_Pending], recorded: dict[UUID, str]) -> None:
        for pending in group:
            self._in_flight.discard(pending.token)
            if not pending.answer.done():
                pending.answer.set_result(recorded.get(pending.token))
        if self._pending:
            self._wake.set()

    async def _writer(self) -> None:
        connection: psycopg.AsyncConnection | None = None
        try:
            while True:
                await self._wake.wait()
                group = self._take()
                if not group:
                    continue
                recorded: dict[UUID, str] = {}
                try:
                    if connection is None or connection.closed:
                        connection = await self._connect()
                    recorded = await self._commit(connection, group)
                    self._note_recovered()
                except (psycopg.Error, OSError) as exc:
                    self._note_failure(exc)
                    if connection is not None and (connection.broken or connection.closed):
                        connection = await _discard(connection)
                self._finish(group, recorded)
        finally:
            await _discard(connection)

    async def _commit(
        self, connection: psycopg.AsyncConnection, group: list[_Pending]
    ) -> dict[UUID, str]:
        params = push_success_fast_params([(p.token, p.at, p.body) for p in group])
        # Autocommit: the statement is its transaction; its rows come back after the commit.
        cursor = await connection.execute(PINGS_SUCCESS_FAST, params, prepare=True)
        rows = await cursor.fetchall()
        self.groups += 1
        self.pings += len(rows)
        return dict(rows)

    def _note_failure(self, exc: Exception) -> None:
        # Logged once per failing spell: the general path answers (or fails) each ping meanwhile.
        if not self._failing:
            logger.warning("ping group commit failed, pings take the general path: %s", exc)
        self._failing = True

    def _note_recovered(self) -> None:
        if self._failing:
            logger.info("ping group commit works again")
        self._failing = False


async def _discard(connection: psycopg.AsyncConnection | None) -> None:
    if connection is not None and not connection.closed:
        with contextlib.suppress(psycopg.Error):
            await connection.close()
    return None
