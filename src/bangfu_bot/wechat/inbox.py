"""Exactly-once handling of pushes: dedupe, per-user order, group commit, late answers.

- A push is recorded under its dedupe key (unique index) in the transaction of its effects,
  so a retry of a finished push finds the stored answer, and a crash before the commit
  leaves nothing behind (the retry handles it afresh).
- A retry that arrives while the first is running gets the same future.
- Pushes of one openid run one at a time, in arrival order; other openids run concurrently
  and share commits (group_commit.GroupCommitter).
- When the webhook stops waiting (reply budget spent, database unavailable), the push is
  journaled in the spool and its answer later leaves through the outbox as a
  customer-service message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.clock import Clock
from bangfu_bot.conversation.bot import Bot, Inbound, say
from bangfu_bot.db import Availability, unavailable
from bangfu_bot.dbutil import in_list, rows_in, upsert
from bangfu_bot.group_commit import Batch, GroupCommitter, Hints, current_batch, write
from bangfu_bot.metrics import Metrics
from bangfu_bot.notify.intents import tell_user
from bangfu_bot.wechat.crypto import PushRejected
from bangfu_bot.wechat.inbound import metric_kind, read_inbound
from bangfu_bot.wechat.models import inbound_messages, wechat_users
from bangfu_bot.wechat.spool import Spool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What became of a push: `status` is handled, duplicate, failed or unavailable."""

    reply: str | None
    status: str


UNAVAILABLE = Outcome(None, "unavailable")


class Inbox:
    """Receives verified pushes and resolves each to one stored answer."""

    def __init__(
        self,
        *,
        committer: GroupCommitter,
        bot: Bot,
        clock: Clock,
        spool: Spool,
        metrics: Metrics,
        on_outbox: Callable[[], None] = lambda: None,
        capacity: int = 2000,
    ) -> None:
        self._capacity = capacity
        self._committer = committer
        self._bot = bot
        self._clock = clock
        self._spool = spool
        self._metrics = metrics
        self._on_outbox = on_outbox
        self._inflight: dict[str, asyncio.Future[Outcome]] = {}
        self._tails: dict[str, asyncio.Future[Outcome]] = {}
        self._late: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.availability = Availability("message path")

    def submit(self, message: Inbound) -> asyncio.Future[Outcome]:
        """Start handling a push, or join the handling already under way for its key."""
        running = self._inflight.get(message.dedupe_key)
        if running is not None:
            self._metrics.duplicates.labels(stage="in_flight").inc()
            return running
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._inflight[message.dedupe_key] = future
        previous = self._tails.get(message.openid)
        self._tails[message.openid] = future
        if (previous is None or previous.done()) and message.dedupe_key not in self._late:
            # The usual push, without a task of its own (a task per push was a tenth of
            # the message path's CPU): its unit goes straight to the committer, and the
            # committed outcome settles it. Errors and late answers take the task's path.
            first = self._committer.enqueue(self._unit(message, late=False), _hints(message))
            first.add_done_callback(lambda done: self._first_done(message, future, done))
        else:
            self._spawn(self._process(message, previous, future))
        return future

    @property
    def under_way(self) -> int:
        """Pushes submitted and not yet answered."""
        return len(self._inflight)

    def full(self) -> bool:
        """Whether as many pushes are under way as memory is allowed to hold."""
        return len(self._inflight) >= self._capacity

    def expected_wait_s(self) -> float:
        """How long a push submitted now would likely wait for its transaction."""
        return self._committer.expected_wait_s()

    async def stop_waiting(self, message: Inbound) -> None:
        """The webhook answers `success` without an answer: journal the push (on disk
        before the answer leaves); its answer follows as a customer-service message."""
        self._late.add(message.dedupe_key)
        await self._spool.journal(message.dedupe_key, message.xml)

    def not_late(self, message: Inbound) -> None:
        """The push could not be journaled: it is not answered `success`, so its answer
        must not go out as a late reply either (WeChat's retry will collect it)."""
        self._late.discard(message.dedupe_key)

    async def shed(self, message: Inbound) -> None:
        """Too much under way: journal the push without starting it. The replayer starts it
        when there is room, and its answer follows as a customer-service message."""
        await self._spool.journal(message.dedupe_key, message.xml)

    async def replay(self) -> int:
        """Resubmit journaled pushes not under way, as many as there is room for (half the
        capacity, so live pushes keep the other half); return how many were resubmitted."""
        count = 0
        room = self._capacity // 2 - len(self._inflight)
        if room <= 0:
            return 0
        for key, xml in self._spool.pending(limit=room + len(self._inflight)):
            if count >= room:
                break
            if key in self._inflight:
                continue
            try:
                message = read_inbound(xml, self._clock)
            except PushRejected:
                self._spool.resolve(key)
                continue
            self._late.add(key)
            self.submit(message)
            count += 1
        return count

    async def drain(self, grace_s: float = 5.0) -> None:
        """Wait up to `grace_s` for pushes under way, then abandon them (they are journaled
        or uncommitted, so the next process or WeChat's retry handles them)."""
        if not self._inflight:
            return
        _, pending = await asyncio.wait(list(self._inflight.values()), timeout=grace_s)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if pending:
            log.warning("shutdown abandoned %d pushes under way", len(pending))
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _unit(self, message: Inbound, late: bool) -> Any:
        return lambda conn: self._work(conn, message, late)

    def _first_done(self, message: Inbound, future: asyncio.Future[Outcome],
                    first: asyncio.Future[Any]) -> None:
        if (not first.cancelled() and first.exception() is None
                and message.dedupe_key not in self._late):
            self._settle(message, future, first.result())
        else:
            self._spawn(self._process(message, None, future,
                                      None if first.cancelled() else first))

    async def _process(
        self,
        message: Inbound,
        previous: asyncio.Future[Outcome] | None,
        future: asyncio.Future[Outcome],
        first: asyncio.Future[Any] | None = None,
    ) -> None:
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            outcome = await self._resolve(message, first)
            if message.dedupe_key in self._late:
                outcome = await self._finish_late(message, outcome)
        except Exception:  # noqa: BLE001 - the future must always settle
            log.exception("push %s could not be resolved", message.dedupe_key[:24])
            outcome = UNAVAILABLE
        self._settle(message, future, outcome)

    def _settle(self, message: Inbound, future: asyncio.Future[Outcome], outcome: Outcome
                ) -> None:
        self._inflight.pop(message.dedupe_key, None)
        if self._tails.get(message.openid) is future:
            del self._tails[message.openid]
        if outcome.status == "duplicate":
            self._metrics.duplicates.labels(stage="stored").inc()
        if outcome.status != "unavailable":
            self.availability.worked()
        self._metrics.message(metric_kind(message), outcome.status)
        future.set_result(outcome)

    async def _resolve(self, message: Inbound, first: asyncio.Future[Any] | None = None
                       ) -> Outcome:
        """The push's outcome: from `first`, the settled try of the fast path, if given,
        else from a try of its own; a failure is sorted (retried, apologised for, or left
        for later when the database is away)."""
        late = message.dedupe_key in self._late
        for attempt in range(2):
            try:
                if first is not None and attempt == 0:
                    return first.result()  # type: ignore[no-any-return]
                return await self._committer.run(self._unit(message, late),  # type: ignore[no-any-return]
                                                 _hints(message))
            except Exception as error:  # noqa: BLE001 - sorted below
                cause = unavailable(error)
                if cause is not None:
                    # One line when the outage starts and one when it ends, with a count:
                    # not a line, let alone a traceback, per push while it lasts.
                    self.availability.failed(cause)
                    return UNAVAILABLE
                if isinstance(error, sa_exc.IntegrityError) and attempt == 0:
                    continue  # another process recorded it first: read its answer
                log.exception("push %s failed in the bot", message.dedupe_key[:24])
                return await self._record_failure(message, late)
        return UNAVAILABLE

    async def _work(self, conn: AsyncConnection, message: Inbound, late: bool) -> Outcome:
        stored = await stored_answer(conn, message.dedupe_key)
        if stored is not None:
            if late:
                await self._queue_late_reply(conn, message, stored.reply_text)
            return Outcome(stored.reply_text, "duplicate")
        now = self._clock.now()
        await note_user(conn, message, now)
        # A hung handler would hold the shared transaction: the committer's time limit
        # (group_commit.UnitTimeout) turns it into an apology, recorded like any failure.
        reply = await self._bot.handle(conn, message, now)
        await self._record(conn, message, "replied" if reply else "no_reply", reply)
        if late:
            await self._queue_late_reply(conn, message, reply)
        return Outcome(reply, "handled")

    async def _record(
        self, conn: AsyncConnection, message: Inbound, outcome: str, reply: str | None
    ) -> None:
        # Deferred to the batch's flush: the unique index on dedupe_key still makes a
        # second process's copy fail at commit, and the batch is then retried unit by unit.
        await write(conn, _RECORD, {
            "dedupe_key": message.dedupe_key, "openid": message.openid,
            "msg_type": message.msg_type, "event": message.event,
            "created_at": message.created_at, "received_at": self._clock.now(),
            "payload": message.xml, "outcome": outcome, "reply_text": reply})

    async def _record_failure(self, message: Inbound, late: bool) -> Outcome:
        apology = say("apology")

        async def work(conn: AsyncConnection) -> Outcome:
            await self._record(conn, message, "failed", apology)
            if late:
                await self._queue_late_reply(conn, message, apology)
            return Outcome(apology, "failed")

        try:
            return await self._committer.run(work)
        except Exception as error:  # noqa: BLE001
            if isinstance(error, sa_exc.IntegrityError):
                return await self._resolve(message)
            return UNAVAILABLE

    async def _queue_late_reply(
        self, conn: AsyncConnection, message: Inbound, reply: str | None
    ) -> None:
        if reply:
            await tell_user(
                conn,
                message.openid,
                reply,
                key=f"reply:{message.dedupe_key}",
                kind="late_reply",
                reason="answer to a message that could not be answered in time",
                urgent=True,
                now=self._clock.now(),
            )

    async def _finish_late(self, message: Inbound, outcome: Outcome) -> Outcome:
        if outcome.status == "unavailable":
            return outcome  # stays journaled; replayed later
        if outcome.reply:
            # It may have become late after its transaction began: make sure it is queued.
            await self._committer.run(
                lambda conn: self._queue_late_reply(conn, message, outcome.reply)
            )
            self._on_outbox()
        self._spool.resolve(message.dedupe_key)
        self._late.discard(message.dedupe_key)
        return outcome


def _hints(message: Inbound) -> Hints:
    return Hints(message.openid, message.dedupe_key)


async def note_user(conn: AsyncConnection, message: Inbound, now: Any) -> None:
    """Track follows and the last message/event, which open customer-service windows."""
    changes: dict[str, Any] = {"subscribed": True}
    if not message.is_event:
        changes["last_message_at"] = now
    elif message.event in {"subscribe", "subscribe_scan"}:
        changes.update(subscribed_at=now, last_event_at=now)
    elif message.event == "unsubscribe":
        changes.update(subscribed=False, unsubscribed_at=now)
    elif message.event in {"click", "scan", "view"}:
        changes["last_event_at"] = now
    else:
        return
    statement = upsert(conn, wechat_users, ["openid"], list(changes))
    await write(conn, statement, {"openid": message.openid, "first_seen_at": now, **changes})


_RECORD = insert(inbound_messages)
_STORED = select(inbound_messages.c.dedupe_key, inbound_messages.c.outcome,
                 inbound_messages.c.reply_text)


@lru_cache(maxsize=16)
def _stored_of(size: int) -> Any:
    return _STORED.where(in_list(inbound_messages.c.dedupe_key, size))


async def stored_answer(conn: AsyncConnection, dedupe_key: str) -> Any:
    """The recorded outcome and reply of a push, if it was handled before."""
    batch = current_batch(conn)
    answers = batch.cache("answer") if batch else None
    if answers is not None and dedupe_key in answers:
        return answers[dedupe_key]
    return (await conn.execute(_STORED.where(inbound_messages.c.dedupe_key == dedupe_key))
            ).first()


async def prefetch_answers(conn: AsyncConnection, batch: Batch, hints: list[Hints]) -> None:
    """One query for the stored answers of every push in the batch (nearly always none)."""
    keys = [hint.dedupe_key for hint in hints if hint.dedupe_key]
    answers: dict[str, Any] = dict.fromkeys(keys)
    answers.update({row.dedupe_key: row for row in await rows_in(conn, _stored_of, keys)})
    batch.fill("answer", answers)  # inbound_messages is written only through write()
