"""Group commit: many units of work share one transaction, few statements and one commit.

One SQLAlchemy async transaction per message is the measured ceiling of the message path
(3.5–4.5 ms of CPU each), and so is each statement (every one is bridged to the driver's
thread or connection). Units of work queue here; a single writer task runs up to `max_batch`
of them, gathered within `window_s`, in one transaction, each handed the transaction's
`UnitOfWork`:

- reads every unit will need (its push's stored answer, its user's dialogue, who the user
  is) are *prefetched* for the whole batch in a few `IN (...)` queries, one `Kind` each,
  and units read them with `uow.get(kind, key)`;
- writes that nothing reads back inside the transaction (the push record, the dialogue, the
  user's last-message time) are *deferred* with `uow.defer(...)` and flushed before the
  commit as one executemany per statement.

One rule keeps every kind fresh: a write to a table a kind is read from drops the kind, so
units read on from the database, unless it is a deferred row of the very table a kind is
read from, keyed by one of its columns, which then becomes that key's value (the database
holds it only at the flush). Every statement executed in the transaction passes the rule
(an engine listener), and so does every deferred row.

If the shared transaction fails, it is rolled back and every unit is run again alone (with
a unit of work of its own, prefetched afresh), so one bad unit cannot undo the others, and
no unit reads what a rolled-back batch-mate wrote. Units must therefore touch nothing but
the database. Nothing is cached across transactions, so several processes cannot see each
other's stale state.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import UpdateBase

from bangfu_bot.changes import settled
from bangfu_bot.db import unavailable

log = logging.getLogger(__name__)

# Outages that a connection carries with it: SQLite opens a connection read-only when its
# file was, and keeps it so; only a new connection sees the file writable again.
_STALE_CONNECTION = frozenset({"readonly database", "unable to open database file"})

V = TypeVar("V")


class UnitTimeout(Exception):
    """A unit of work ran past its time limit (a bug, not an outage): it would hold the
    shared transaction, so it fails alone and its batch-mates are run without it."""


@dataclass(frozen=True)
class Hints:
    """What a unit will read, so the batch can fetch it for all units at once."""

    openid: str = ""
    dedupe_key: str = ""


class Kind(Generic[V]):
    """One kind of read that units share: its values by key (an openid, a dedupe key), and
    the tables they are read from, which is all the freshness rule needs to know.

    `key` names the column of a kind read from one table that its values are keyed by; a
    row deferred to that table then becomes its key's value (as attributes, like a row), so
    such rows must be what will be stored (an INSERT, or an upsert of every column read).
    Without `key`, any write to one of its tables drops the kind."""

    __slots__ = ("key", "name", "tables")

    def __init__(self, name: str, *, tables: Iterable[str], key: str | None = None) -> None:
        self.name = name
        self.tables = frozenset(tables)
        if not self.tables:
            raise ValueError(f"kind {name!r} must name the tables it is read from")
        if key is not None and len(self.tables) != 1:
            raise ValueError(f"kind {name!r} is keyed by a column of one table only")
        self.key = key

    def __repr__(self) -> str:
        return f"Kind({self.name!r})"


class Unknown(enum.Enum):
    """What `UnitOfWork.get` returns for a value it does not hold: read it yourself."""

    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN


class UnitOfWork:
    """What the units of one transaction share: the connection, the batch's hints, the
    values prefetched for them (by kind) and the writes deferred to the commit.

    Outside a group commit (`UnitOfWork.of` a plain connection) it holds nothing and a
    deferred write is executed at once, so code that takes one works either way."""

    __slots__ = ("_deferring", "_readers", "_values", "_writes", "conn", "hints")

    def __init__(
        self, conn: AsyncConnection, hints: list[Hints] | None = None, *, deferring: bool = True
    ) -> None:
        self.conn = conn
        self.hints: list[Hints] = hints or []
        self._values: dict[Kind[Any], dict[str, Any]] = {}
        self._readers: dict[str, list[Kind[Any]]] = {}  # table -> kinds read from it
        self._writes: dict[int, tuple[Any, list[dict[str, Any]]]] = {}
        self._deferring = deferring

    @staticmethod
    def of(conn: AsyncConnection) -> UnitOfWork:
        """The unit of work of the group commit whose transaction `conn` is in, or, outside
        one, a unit of work of its own that holds nothing and defers nothing."""
        sync = conn.sync_connection
        uow: UnitOfWork | None = sync.info.get(_OPEN) if sync is not None else None
        return uow if uow is not None else UnitOfWork(conn, deferring=False)

    def get(self, kind: Kind[V], key: str) -> V | Unknown:
        """The value of `key` held for `kind`, or UNKNOWN (not prefetched, or dropped)."""
        values = self._values.get(kind)
        if values is None:
            return UNKNOWN
        return values.get(key, UNKNOWN)

    def fill(self, kind: Kind[V], values: dict[str, V]) -> None:
        """Hold prefetched values of `kind` until a write to one of its tables."""
        self._values[kind] = values
        for table in kind.tables:
            self._readers.setdefault(table, []).append(kind)

    async def defer(self, statement: Any, row: dict[str, Any]) -> None:
        """Write one row (an INSERT/upsert) with the batch's other rows just before the
        commit; outside a group commit, now. Only for writes nothing reads back in the same
        transaction except through a kind. `statement` must be a shared object (e.g. from
        dbutil's caches): rows of one statement go in one executemany."""
        if not self._deferring:
            await self.conn.execute(statement, row)
            return
        table = statement.table.name
        if table in self._readers:  # (the rule's test, done here: most rows need no call)
            self.wrote(table, row)
        self._writes.setdefault(id(statement), (statement, []))[1].append(row)

    def wrote(self, table: str, row: dict[str, Any] | None = None) -> None:
        """The freshness rule, for every kind read from `table`: a deferred `row` of the
        kind's own table becomes its key's value; any other write drops the kind."""
        kinds = self._readers.get(table)
        if not kinds:
            return
        for kind in kinds:
            values = self._values.get(kind)
            if values is None:
                continue
            if row is not None and kind.key is not None and kind.key in row:
                values[row[kind.key]] = SimpleNamespace(**row)
            else:
                del self._values[kind]

    async def flush(self) -> None:
        """Write what was deferred, in the order the statements were first used."""
        writes, self._writes = self._writes, {}
        for statement, rows in writes.values():
            await self.conn.execute(statement, rows)


Work = Callable[[UnitOfWork], Awaitable[Any]]
# A read done once per batch: it fills `uow.fill(kind, values)` for all of `uow.hints`.
Prefetch = Callable[[UnitOfWork], Awaitable[None]]
# Where a group commit's transaction keeps its unit of work (Connection.info), for
# `UnitOfWork.of` and the write listener; nothing else reads it.
_OPEN = object()


class _Held:
    """A writer's connection, kept from one batch to the next.

    Checking one out of the pool for every batch cost, on PostgreSQL, the pool's pre-ping
    (BEGIN, an empty query and ROLLBACK: three round trips while the batch's 64 replies
    wait) and a reset on return. After a failed transaction the connection is handed back
    and the next transaction checks a fresh one out, pre-pinged (see `_transaction` for a
    connection the server dropped)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def get(self) -> AsyncConnection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = await self._engine.connect()
        return self._conn

    async def release(self, *, discard: bool = False) -> None:
        """Hand the connection back; `discard` drops it from the pool instead (an SQLite
        connection opened while its file was read-only stays read-only for its life, so
        after such an error only a new connection can see the file writable again)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a dead connection is only discarded
                if discard:
                    await conn.invalidate()
                await conn.close()


@dataclass
class _Job:
    work: Work
    hints: Hints | None = None
    future: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitter:
    """Runs units of work in shared transactions, from `writers` writer tasks.

    One writer suits SQLite (one writer at a time is all it allows). On PostgreSQL two
    writers take turns: each batch holds at most `max_batch / writers` units, and the units
    of only one batch run at a time (`_working`), so one batch runs its units on this
    process's CPU while the other waits on the server (its reads, its writes, its commit).
    Without the turns, a burst split in two ran both halves in step and nothing overlapped;
    with them, measured here, 15 % more pushes a second. A writer waiting for its turn has
    only read, so it holds no row lock another batch could wait on. A user's next push only
    starts after the previous one committed, so per-user order still holds.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        window_s: float = 0.002,
        max_batch: int = 64,
        prefetch: list[Prefetch] | None = None,
        on_batch: Callable[[int], None] = lambda size: None,
        writers: int = 1,
        unit_timeout_s: float = 10.0,
    ) -> None:
        self._engine = engine
        self._writers = writers
        self._unit_timeout_s = unit_timeout_s
        self._on_batch = on_batch
        self._unit_s = 0.001  # moving average of seconds per unit, batches included
        self._running = 0
        self._prefetch = prefetch or []
        event.listen(engine.sync_engine, "before_execute", _note_write)
        self._window_s = window_s
        self._max_batch = max(1, max_batch // writers)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._held: list[_Held] = []
        self._gathering = asyncio.Lock()
        self._working = asyncio.Lock()  # whose batch runs its units now (see above)
        self.batches = 0

    def start(self) -> None:
        """Start the writer task."""
        self._held = [_Held(self._engine) for _ in range(self._writers)]
        self._tasks = [
            asyncio.create_task(self._writer(held), name=f"group-commit-writer-{n}")
            for n, held in enumerate(self._held)
        ]

    async def close(self, grace_s: float = 5.0) -> None:
        """Finish what is queued (waiting at most `grace_s`), then stop the writers."""
        if not self._tasks:
            return
        try:
            await asyncio.wait_for(self._queue.join(), grace_s)
        except TimeoutError:
            log.warning("group commit closed with work still queued (rolled back)")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for held in self._held:
            await held.release()

    @property
    def queued(self) -> int:
        """Units waiting for the writer (the webhook sheds load on this)."""
        return self._queue.qsize()

    def expected_wait_s(self) -> float:
        """How long a unit queued now would likely wait for its commit."""
        return (self._queue.qsize() + self._running) * self._unit_s

    async def run(self, work: Work, hints: Hints | None = None) -> Any:
        """Run one unit of work in a (possibly shared) transaction; return its result."""
        # Not shielded: a cancelled caller cancels only its future; the queued unit still
        # runs, and its result is dropped (_settle skips a future that is done).
        return await self.enqueue(work, hints)

    def enqueue(self, work: Work, hints: Hints | None = None) -> asyncio.Future[Any]:
        """Queue one unit of work; its future settles once its transaction has committed
        (with its result) or failed (with its error)."""
        job = _Job(work, hints)
        self._queue.put_nowait(job)
        return job.future

    async def _writer(self, held: _Held) -> None:
        while True:
            async with self._gathering:  # one batch fills at a time; the other writer runs
                batch = [await self._queue.get()]
                await self._gather(batch)
            self._running += len(batch)
            started = time.monotonic()
            try:
                await self._run_batch(batch, held)
            except Exception:
                log.exception("group commit writer failed")
            finally:
                self._running -= len(batch)
                for _ in batch:
                    self._queue.task_done()
            per_unit = (time.monotonic() - started) / len(batch) / self._writers
            self._unit_s += (per_unit - self._unit_s) * 0.2
            self._on_batch(len(batch))

    async def _gather(self, batch: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._window_s
        while len(batch) < self._max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                return

    async def _run_batch(self, batch: list[_Job], held: _Held) -> None:
        self.batches += 1
        if len(batch) > 1:
            try:
                results = await self._transaction(batch, held)
            except Exception as exc:  # noqa: BLE001 - fall back to one transaction each
                if unavailable(exc) is None:  # an outage is logged once, by the inbox
                    log.warning(
                        "shared transaction of %d failed (%s); retrying each alone",
                        len(batch),
                        type(exc).__name__,
                    )
            else:
                for job, result in zip(batch, results, strict=True):
                    _settle(job, result=result)
                return
        for job in batch:
            try:
                (result,) = await self._transaction([job], held)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                _settle(job, error=exc)
            else:
                _settle(job, result=result)

    async def _transaction(self, jobs: list[_Job], held: _Held) -> list[Any]:
        try:
            return await self._attempt(jobs, held)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # The server went away (a restart, a failover). Nothing of this transaction
            # stayed, unless the commit itself was cut off; a push's stored answer then
            # makes its second run a replay.
            log.warning(
                "database connection lost; running %d unit(s) again on a new one", len(jobs)
            )
            return await self._attempt(jobs, held)

    async def _attempt(self, jobs: list[_Job], held: _Held) -> list[Any]:
        conn = await held.get()
        uow = UnitOfWork(conn, [job.hints for job in jobs if job.hints is not None])
        try:
            async with conn.begin():
                info = conn.sync_connection.info  # type: ignore[union-attr]
                info[_OPEN] = uow
                try:
                    await self._load(uow)
                    async with self._working:
                        results = await self._work(uow, jobs)
                    await uow.flush()
                finally:
                    del info[_OPEN]  # info outlives the transaction (the DBAPI conn's)
            settled(conn)  # the connection is held on: count its writes now
        except BaseException as error:
            # It may be broken: the next transaction takes a fresh one.
            await held.release(discard=unavailable(error) in _STALE_CONNECTION)
            raise
        return results

    async def _work(self, uow: UnitOfWork, jobs: list[_Job]) -> list[Any]:
        # One timer for the whole batch rather than one per unit: a batch past the limit is
        # rolled back and its units run alone, each under the same limit, so only the unit
        # that hangs fails.
        limit = asyncio.timeout(self._unit_timeout_s)
        try:
            async with limit:
                return [await job.work(uow) for job in jobs]
        except TimeoutError:
            if not limit.expired():
                raise  # the work's own timeout (a driver's, say), not ours
            raise UnitTimeout(f"{len(jobs)} unit(s) took over {self._unit_timeout_s} s") from None

    async def _load(self, uow: UnitOfWork) -> None:
        if not uow.hints:
            return
        for prefetch in self._prefetch:
            await prefetch(uow)


def _note_write(conn: Connection, clause: Any, *args: Any) -> None:
    """Every statement executed in a group commit's transaction passes the freshness rule
    (`UnitOfWork.wrote`): an INSERT, UPDATE or DELETE drops the kinds read from its table."""
    uow = conn.info.get(_OPEN)
    if uow is not None and isinstance(clause, UpdateBase):
        uow.wrote(str(getattr(clause.table, "name", clause.table)))


def _settle(job: _Job, *, result: Any = None, error: BaseException | None = None) -> None:
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)
