"""The desk's county-wide figures, read once per scope for a short window.

工作台's grid, held notices, fund line, arrears buckets and campaigns, and 案件's filter
choices, are whole-table aggregates: under many sessions summing them on every page costs
more than the pages themselves. They are read once per scope (the county, a township, a
branch) and kept for `WINDOW`; requests that arrive while they are being read wait for that
one reading (single flight). The page says 数据截至 the time they were read. Any act on the
desk forgets them all, so whoever acted sees the change at once. A viewer's own to-dos and
the case list's rows are not kept here: they stay live.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bangfu_bot.reports.viewer import Viewer

T = TypeVar("T")
WINDOW = timedelta(seconds=30)


@dataclass(frozen=True)
class Read:
    """Figures and the time they were read."""

    value: Any
    read_at: datetime
    generation: int


def scope_key(viewer: Viewer) -> tuple[str, int | None]:
    """What a viewer's figures depend on: their scope and its place."""
    if viewer.scope == "county":
        return ("county", None)
    if viewer.scope == "township":
        return ("township", viewer.person.committee_id)
    return ("branch", viewer.person.branch_id)


class Figures:
    """Kept readings by key (a page's part and a scope), on the `Desk`."""

    def __init__(self, clock: Callable[[], datetime], *, window: timedelta = WINDOW) -> None:
        self._clock = clock
        self._window = window
        self._kept: dict[Hashable, Read] = {}
        self._reading: dict[Hashable, asyncio.Future[Read]] = {}
        self._generation = 0

    async def get(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> tuple[T, datetime]:
        """The figures under `key` and when they were read: kept ones while fresh, else one
        reading shared by every request that asks meanwhile."""
        now = self._clock()
        kept = self._kept.get(key)
        if kept is not None and kept.read_at <= now < kept.read_at + self._window:
            return kept.value, kept.read_at
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._read(key, read, now, self._generation))
            self._reading[key] = reading
        # One request giving up (a closed connection) does not cancel the others' reading.
        done = await asyncio.shield(reading)
        return done.value, done.read_at

    async def _read(
        self,
        key: Hashable,
        read: Callable[[], Awaitable[Any]],
        read_at: datetime,
        generation: int,
    ) -> Read:
        try:
            value = await read()
        finally:
            if self._reading.get(key) is asyncio.current_task():
                del self._reading[key]
        done = Read(value, read_at, generation)
        if generation == self._generation:
            self._kept[key] = done
        return done

    def forget(self) -> None:
        """Forget every kept reading (after an act); readings under way are not kept."""
        self._generation += 1
        self._kept.clear()
        self._reading.clear()
