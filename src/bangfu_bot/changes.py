"""Which tables this process has written: a counter per table, moved on once the write is
committed, so that a reading kept in memory (the desk's) knows at once that what it was
read from has changed.

The counters move when the connection that wrote goes back to the pool, which is after its
transaction has ended (a connection held from one transaction to the next, the group
commit's, says so itself with `settled` after each commit). So a reader that notes the
counters before it reads either sees the write in its reading or finds the counters moved
when it next looks. A transaction rolled back moves them too (harmless: a reading is made
again for nothing). Writes made by another process are not seen here; whoever keeps
readings also bounds their age.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_WRITTEN = "bangfu_written"  # on the pooled connection's info: tables written since checkout
_WATCHING: weakref.WeakKeyDictionary[Engine, Changes] = weakref.WeakKeyDictionary()


class Changes:
    """Counters of committed writes per table, for one process."""

    def __init__(self) -> None:
        self._counts: defaultdict[str, int] = defaultdict(int)

    def watch(self, engine: AsyncEngine) -> None:
        """Count the writes made through this engine."""
        sync = engine.sync_engine
        event.listen(sync, "after_cursor_execute", self._noted)
        event.listen(sync.pool, "checkin", self._returned)
        _WATCHING[sync] = self

    def snapshot(self, tables: Iterable[str]) -> tuple[int, ...]:
        """The counters of these tables now (compare two to learn whether any moved)."""
        counts = self._counts
        return tuple(counts[name] for name in tables)

    def touch(self, *tables: str) -> None:
        """Move the counters of tables changed by other means than this engine's writes."""
        for name in tables:
            self._counts[name] += 1

    @staticmethod
    def _noted(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if context is None or not (context.isinsert or context.isupdate or context.isdelete):
            return
        table = getattr(getattr(context.compiled, "statement", None), "table", None)
        name = getattr(table, "name", None)
        if name is not None:
            conn.info.setdefault(_WRITTEN, set()).add(name)

    def _returned(self, dbapi_connection: Any, record: Any) -> None:
        written = record.info.pop(_WRITTEN, None) if record is not None else None
        if written:
            self.touch(*written)


def settled(conn: AsyncConnection) -> None:
    """Count now what a held connection wrote in the transaction it has just committed."""
    written = conn.info.pop(_WRITTEN, None)
    watching = _WATCHING.get(conn.sync_engine)
    if written and watching is not None:
        watching.touch(*written)
