"""The desk's readings kept in memory: read once, shared by every request that wants them
while they hold.

Three kinds, by what a reading costs and how live it must be:

- **scope figures** (工作台's grid, held notices and campaigns, 案件's filter choices):
  whole-table aggregates, read once per scope (the county, a township, a branch) and kept
  for `WINDOW`; the page says 数据截至 the time they were read;
- **live readings** (a viewer's own to-dos, 案件's rows): read again as soon as this
  process writes to a table they are read from, so what a secretary replies in WeChat
  shows on the next page; writes made by another process show within `LIVE` (past it the
  last reading is shown while the next one is read in the background);
- **money figures** (loans by arrears bucket, the fund's line): read once for the whole
  county (seconds on a big one), kept until this process writes to the loans or the fund,
  the day turns, or `MONEY` has passed; past `MONEY` the last reading is still shown (with
  its time) while the next one is read in the background, so no page waits for it.

Requests that arrive while a reading is under way wait for that one reading (single
flight). Any act on the desk forgets everything, so whoever acted sees the change at once.

Readings shown while the next is read are read again at most `REFRESHING` at a time, each
after its window stretched by up to a half, by key: 64 officials' to-dos read in the same
second would otherwise all come due in the same second, and 64 queries at once held every
page back for a second (seen on the bench's county).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bangfu_bot.changes import Changes
from bangfu_bot.reports.viewer import Viewer

log = logging.getLogger(__name__)

T = TypeVar("T")
REFRESHING = 2  # background readings at once
MOST = 5_000  # kept readings (filter combinations add keys): past it, all are forgotten
WINDOW = timedelta(seconds=30)
LIVE = timedelta(seconds=10)
MONEY = timedelta(minutes=5)


@dataclass(frozen=True)
class Read:
    """A reading, when it was made, and the write counters of its tables before it."""

    value: Any
    read_at: datetime
    snapshot: tuple[int, ...]


def scope_key(viewer: Viewer) -> tuple[str, int | None]:
    """What a viewer's figures depend on: their scope and its place."""
    if viewer.scope == "county":
        return ("county", None)
    if viewer.scope == "township":
        return ("township", viewer.person.committee_id)
    return ("branch", viewer.person.branch_id)


class Figures:
    """Kept readings by key (a page's part and a scope), on the `Desk`."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        changes: Changes | None = None,
        *,
        window: timedelta = WINDOW,
    ) -> None:
        self._clock = clock
        self._changes = changes or Changes()
        self._window = window
        self._kept: dict[Hashable, Read] = {}
        self._reading: dict[Hashable, tuple[asyncio.Future[Read], tuple[int, ...]]] = {}
        self._generation = 0
        self._refreshing = asyncio.Semaphore(REFRESHING)

    async def get(
        self,
        key: Hashable,
        read: Callable[[], Awaitable[T]],
        *,
        tables: Sequence[str] = (),
        window: timedelta | None = None,
        stale: bool = False,
    ) -> tuple[T, datetime]:
        """The reading under `key` and when it was made: the kept one while it holds (no
        write to `tables` since, younger than `window`), else one reading shared by every
        request that asks meanwhile. `stale`: past its window (but unchanged), the kept one
        is returned while the next is read in the background."""
        now = self._clock()
        snapshot = self._changes.snapshot(tables)
        kept = self._kept.get(key)
        if kept is not None and kept.snapshot == snapshot and kept.read_at <= now:
            held = window or self._window
            if stale:  # spread the keys' next readings (see above)
                held += held * (hash(key) % 512) / 1024
            if now < kept.read_at + held:
                return kept.value, kept.read_at
            if stale:
                self._start(key, read, now, snapshot, background=True)
                return kept.value, kept.read_at
        done = await asyncio.shield(self._start(key, read, now, snapshot))
        return done.value, done.read_at

    def _start(
        self,
        key: Hashable,
        read: Callable[[], Awaitable[Any]],
        now: datetime,
        snapshot: tuple[int, ...],
        *,
        background: bool = False,
    ) -> asyncio.Future[Read]:
        """The reading under way for `key`, begun now unless one begun after the last write
        to its tables is already under way (`background`: nobody waits for it)."""
        under_way = self._reading.get(key)
        if under_way is not None and under_way[1] == snapshot:
            return under_way[0]
        if background:
            read = self._in_turn(read)
        reading = asyncio.ensure_future(self._read(key, read, now, self._generation, snapshot))
        reading.add_done_callback(_quiet)
        self._reading[key] = (reading, snapshot)
        return reading

    def _in_turn(self, read: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        async def in_turn() -> Any:
            async with self._refreshing:
                return await read()

        return in_turn

    async def _read(
        self,
        key: Hashable,
        read: Callable[[], Awaitable[Any]],
        read_at: datetime,
        generation: int,
        snapshot: tuple[int, ...],
    ) -> Read:
        started = time.monotonic()
        try:
            value = await read()
        finally:
            under_way = self._reading.get(key)
            if under_way is not None and under_way[0] is asyncio.current_task():
                del self._reading[key]
        log.debug("desk: read %s in %.0f ms", key, (time.monotonic() - started) * 1000)
        done = Read(value, read_at, snapshot)
        if generation == self._generation:
            if len(self._kept) >= MOST:
                self._kept.clear()
            kept = self._kept.get(key)
            # A reading begun earlier but done later does not replace a newer one.
            if kept is None or kept.read_at <= read_at:
                self._kept[key] = done
        return done

    def forget(self) -> None:
        """Forget every kept reading (after an act); readings under way are not kept."""
        self._generation += 1
        self._kept.clear()
        self._reading.clear()


def _quiet(reading: asyncio.Future[Read]) -> None:
    """A background reading that failed is logged (its waiters, if any, got the error)."""
    if not reading.cancelled() and reading.exception() is not None:
        log.warning("desk: a reading failed: %s", type(reading.exception()).__name__)
