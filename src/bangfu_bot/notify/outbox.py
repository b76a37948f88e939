"""Writing to the outbox, and the dispatcher that sends what is written.

Domain code calls `queue_message` inside its own transaction; it never calls WeChat.
The dispatcher claims due rows one at a time (a conditional UPDATE, so two processes never
send the same row), sends them, and records every attempt. Channel choice, templates,
quiet hours and escalation to a branch secretary build on this (issue 5).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.clock import Clock
from bangfu_bot.dbutil import insert_ignore
from bangfu_bot.notify.models import outbox, outbox_attempts
from bangfu_bot.wechat.client import ErrorKind, WeChatAPIError, WeChatClient

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# A row left "sending" by a process that died is retried after this long.
STALE_CLAIM = timedelta(minutes=5)


async def queue_message(
    conn: AsyncConnection,
    *,
    key: str,
    openid: str,
    kind: str,
    content: str,
    reason: str,
    now: datetime,
    urgent: bool = False,
) -> None:
    """Write one outbox row; a second write with the same key is ignored."""
    statement = insert_ignore(conn, outbox, ["idempotency_key"]).values(
        idempotency_key=key[:200],
        openid=openid,
        kind=kind,
        content=content,
        reason=reason[:200],
        urgent=urgent,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    await conn.execute(statement)


def backoff(attempts: int) -> timedelta:
    """Wait before the next try: 10 s, 20 s, 40 s ... capped at 30 minutes."""
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 1800))


class Dispatcher:
    """Sends due outbox rows as customer-service messages and records each attempt."""

    def __init__(
        self, *, engine: AsyncEngine, client: WeChatClient, clock: Clock, poll_s: float = 2.0
    ) -> None:
        self._engine = engine
        self._client = client
        self._clock = clock
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the sending loop."""
        self._task = asyncio.create_task(self._loop(), name="outbox-dispatcher")

    async def close(self) -> None:
        """Stop the sending loop."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def wake(self) -> None:
        """Look for due rows now rather than at the next poll."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.send_due()
            except Exception as exc:  # noqa: BLE001 - keep dispatching after a bad moment
                log.warning("outbox dispatch failed: %s", type(exc).__name__)
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            except TimeoutError:
                pass
            self._wake.clear()

    async def send_due(self, limit: int = 50) -> int:
        """Send every row that is due; return how many were attempted."""
        now = self._clock.now()
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.status == "sending", outbox.c.next_attempt_at < now - STALE_CLAIM)
                .values(status="pending")
            )
            rows = (
                await conn.execute(
                    select(outbox.c.id)
                    .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
                    .order_by(outbox.c.urgent.desc(), outbox.c.id)
                    .limit(limit)
                )
            ).all()
        sent = 0
        for (row_id,) in rows:
            if await self._send_one(row_id):
                sent += 1
        return sent

    async def _send_one(self, row_id: int) -> bool:
        row = await self._claim(row_id)
        if row is None:
            return False
        try:
            await self._client.send_text(openid=row.openid, content=row.content)
        except WeChatAPIError as error:
            await self._record(row, error.errcode, error.errmsg, _status_after(row, error))
        else:
            await self._record(row, 0, "ok", "sent")
        return True

    async def _claim(self, row_id: int) -> Any:
        now = self._clock.now()
        async with self._engine.begin() as conn:
            claimed = await conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.status == "pending")
                .values(status="sending", next_attempt_at=now)
            )
            if claimed.rowcount != 1:
                return None
            return (await conn.execute(select(outbox).where(outbox.c.id == row_id))).first()

    async def _record(self, row: Any, errcode: int, errmsg: str, status: str) -> None:
        now = self._clock.now()
        attempts = row.attempts + 1
        values: dict[str, Any] = {"status": status, "attempts": attempts, "last_errcode": errcode}
        if status == "sent":
            values["sent_at"] = now
        if status == "pending":
            values["next_attempt_at"] = now + backoff(attempts)
        async with self._engine.begin() as conn:
            await conn.execute(update(outbox).where(outbox.c.id == row.id).values(**values))
            await conn.execute(
                insert(outbox_attempts).values(
                    outbox_id=row.id, at=now, channel="custom", errcode=errcode,
                    errmsg=errmsg[:200],
                )
            )
        if status != "sent":
            log.info("outbox row %s: errcode %s -> %s", row.id, errcode, status)


def _status_after(row: Any, error: WeChatAPIError) -> str:
    if error.kind == ErrorKind.UNDELIVERABLE:
        return "undeliverable"
    if error.kind == ErrorKind.RETRY and row.attempts + 1 < MAX_ATTEMPTS:
        return "pending"
    return "failed"
