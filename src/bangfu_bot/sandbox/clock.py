"""The sandbox clock's offset from real time, kept in the database (table sandbox_clock).

The page moves the clock ahead; the data it then makes (notices ended, reminders sent,
instalments overdue) is as far ahead as the clock. Kept in memory only, a restart would take
the clock back to today while the data stayed ahead, so every move is written down and the
offset is read back when the bot starts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.clock import OffsetClock
from bangfu_bot.clock_models import sandbox_clock
from bangfu_bot.dbutil import upsert

ROW = 1
MICROSECOND = timedelta(microseconds=1)


async def stored_offset(engine: AsyncEngine) -> timedelta | None:
    """The offset last written, or None when the clock was never moved."""
    async with engine.connect() as conn:
        value = (
            await conn.execute(select(sandbox_clock.c.offset_us).where(sandbox_clock.c.id == ROW))
        ).scalar()
    return None if value is None else timedelta(microseconds=int(value))


async def restore(engine: AsyncEngine, clock: OffsetClock) -> None:
    """Set the clock to the stored offset (left as it is when none was ever stored)."""
    offset = await stored_offset(engine)
    if offset is not None:
        clock.offset = offset


async def save(engine: AsyncEngine, clock: OffsetClock) -> None:
    """Write the clock's offset down (after each move)."""
    offset_us = clock.offset // MICROSECOND
    moved_at = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            upsert(conn, sandbox_clock, ["id"], ["offset_us", "moved_at"]).values(
                id=ROW, offset_us=offset_us, moved_at=moved_at
            )
        )
