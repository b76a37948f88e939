"""Which process runs the scheduler and the dispatcher.

Several web processes may share one PostgreSQL; exactly one of them — the holder of a
session-level advisory lock on a connection of its own — runs the scheduled jobs and sends
the outbox. If it dies, PostgreSQL drops the lock with its connection and another process
takes over at its next try (every `retry_s`, well within a minute). On SQLite there is one
process and it leads from the start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# An arbitrary constant naming "the bangfu-bot leader" among advisory locks.
LOCK_KEY = 0x62616E6766


class Leadership:
    """Holds the leader lock while it can, and starts/stops the leader's work."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        on_elected: Callable[[], None],
        on_deposed: Callable[[], Awaitable[None]],
        retry_s: float = 15.0,
    ) -> None:
        self._engine = engine
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._retry_s = retry_s
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None
        self.leading = False

    def start(self) -> None:
        """Begin trying to lead."""
        if self._engine.dialect.name != "postgresql":
            self._elect()
            return
        self._task = asyncio.create_task(self._campaign(), name="leadership")

    async def close(self) -> None:
        """Stop leading (the lock goes with the connection)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.leading:
            await self._depose()
        await self._drop_connection()

    def _elect(self) -> None:
        self.leading = True
        log.info("this process leads: it runs the scheduler and the dispatcher")
        self._on_elected()

    async def _depose(self) -> None:
        self.leading = False
        await self._on_deposed()

    async def _campaign(self) -> None:
        while True:
            try:
                if not self.leading and await self._try_lock():
                    self._elect()
                elif self.leading and not await self._still_holding():
                    log.warning("lost the leader lock; stopping the scheduler here")
                    await self._depose()
                    await self._drop_connection()
                self._failing = False
            except Exception as exc:  # noqa: BLE001 - the database may come and go
                # Once per outage, not every retry while it lasts.
                if not self._failing:
                    log.warning("leadership check failed: %s", type(exc).__name__)
                self._failing = True
                if self.leading:
                    await self._depose()
                await self._drop_connection()
            await asyncio.sleep(self._retry_s)

    _failing = False

    async def _try_lock(self) -> bool:
        if self._conn is None:
            self._conn = await self._engine.connect()
        got = (
            await self._conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY})
        ).scalar()
        await self._conn.commit()  # end the implicit transaction; the lock is per session
        if not got:
            await self._drop_connection()
        return bool(got)

    async def _still_holding(self) -> bool:
        if self._conn is None:
            return False
        await self._conn.execute(text("SELECT 1"))
        await self._conn.commit()
        return True

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - a dead connection is closed already
                pass
