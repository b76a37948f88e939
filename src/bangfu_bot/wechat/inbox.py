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

A push's life is a `Push` moving through `PushState`s, read top to bottom in `Inbox`:

    RECEIVED ──▶ QUEUED ──▶ HANDLED | DUPLICATE | FAILED ──(late)──▶ LATE
    (its turn)      │                        └──(late, the reply not queued)──▶ JOURNALED
                    ├──▶ UNAVAILABLE                           (the database away)
                    └──(late)──▶ JOURNALED                     (the database away)

HANDLED, DUPLICATE, FAILED and UNAVAILABLE end a push the webhook still waits for; a late
one (the webhook stopped waiting and journaled it) ends LATE, answered through the outbox,
or JOURNALED, left to the replayer. A push moves by callbacks on its units' futures, never
in a task of its own (a task per push was a tenth of the message path's CPU); every such
step ends the push whatever goes wrong (`_give_up`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache, partial
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.clock import Clock
from bangfu_bot.conversation.bot import Bot, Inbound, say
from bangfu_bot.db import Availability, unavailable
from bangfu_bot.dbutil import in_list, rows_in, upsert
from bangfu_bot.group_commit import UNKNOWN, GroupCommitter, Hints, Kind, UnitOfWork
from bangfu_bot.metrics import Metrics
from bangfu_bot.notify.intents import tell_user
from bangfu_bot.wechat.crypto import PushRejected
from bangfu_bot.wechat.inbound import metric_kind, read_inbound
from bangfu_bot.wechat.models import inbound_messages, wechat_users
from bangfu_bot.wechat.spool import Spool

log = logging.getLogger(__name__)


class PushState(StrEnum):
    """Where a push is in its life. An `Outcome` carries HANDLED, DUPLICATE, FAILED or
    UNAVAILABLE, whose values are the `outcome` label of bangfu_messages_total."""

    RECEIVED = "received"  # taken in; waits for the same member's previous push to end
    QUEUED = "queued"  # its unit is with the group committer (a retry stays queued)
    HANDLED = "handled"  # committed: the bot's answer, recorded
    DUPLICATE = "duplicate"  # committed before (here or by another process): that answer
    FAILED = "failed"  # the bot failed: an apology, recorded
    UNAVAILABLE = "unavailable"  # not resolved (the database away); nothing recorded
    LATE = "late"  # answered through the outbox, and its journal entry resolved
    JOURNALED = "journaled"  # late and not resolved: the replayer starts it again


S = PushState
# The legal moves; anything else is a bug and raises IllegalTransition.
MOVES: dict[PushState, frozenset[PushState]] = {
    S.RECEIVED: frozenset({S.QUEUED}),
    S.QUEUED: frozenset({S.HANDLED, S.DUPLICATE, S.FAILED, S.UNAVAILABLE, S.JOURNALED}),
    S.HANDLED: frozenset({S.LATE, S.JOURNALED}),
    S.DUPLICATE: frozenset({S.LATE, S.JOURNALED}),
    S.FAILED: frozenset({S.LATE, S.JOURNALED}),
    S.UNAVAILABLE: frozenset(),
    S.LATE: frozenset(),
    S.JOURNALED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A push was moved where its life does not go (see MOVES)."""


@dataclass(frozen=True)
class Outcome:
    """What a push resolved to: its answer, and HANDLED, DUPLICATE, FAILED or UNAVAILABLE."""

    reply: str | None
    status: PushState


UNAVAILABLE = Outcome(None, S.UNAVAILABLE)


class Push:
    """One push under way: its message, its state, and the future of its outcome."""

    __slots__ = ("answer", "late", "message", "next", "state", "tries")

    def __init__(self, message: Inbound, answer: asyncio.Future[Outcome], *, late: bool) -> None:
        self.message = message
        self.answer = answer
        self.state = S.RECEIVED
        # The webhook stopped waiting and journaled it: its answer leaves through the outbox.
        # A flag beside the state, not a state: the webhook sets it at any point (and takes
        # it back when the journal could not be written), and what it changes is how the
        # push ends (LATE or JOURNALED).
        self.late = late
        self.tries = 0  # of its unit; a conflict with another process's copy earns a second
        self.next: Push | None = None  # the same member's next push, waiting for this one

    def move(self, to: PushState) -> None:
        """Go to `to`, or raise IllegalTransition if the push's life does not go there."""
        if to not in MOVES[self.state]:
            raise IllegalTransition(
                f"push {self.message.dedupe_key[:24]}: {self.state.name} -> {to.name}"
            )
        self.state = to

    def __repr__(self) -> str:
        return f"<Push {self.message.dedupe_key[:24]} {self.state.name}{' late' * self.late}>"


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
        # What a push cannot hold itself: the pushes under way by dedupe key (a retry joins
        # its push), and each member's last push (the next one waits behind it).
        self._under_way: dict[str, Push] = {}
        self._last_of: dict[str, Push] = {}
        self.availability = Availability("message path")

    # --- a push's life, in order ---------------------------------------------------------

    def submit(self, message: Inbound, *, late: bool = False) -> asyncio.Future[Outcome]:
        """Start handling a push (RECEIVED), or join the handling already under way for its
        key; `late` for a journaled push the webhook answered `success` already."""
        running = self._under_way.get(message.dedupe_key)
        if running is not None:
            self._metrics.duplicates.labels(stage="in_flight").inc()
            return running.answer
        push = Push(message, asyncio.get_running_loop().create_future(), late=late)
        self._under_way[message.dedupe_key] = push
        previous = self._last_of.get(message.openid)
        self._last_of[message.openid] = push
        if previous is None:
            self._queue(push)
        else:
            previous.next = push  # its turn comes when the previous push ends (_settle)
        return push.answer

    def _queue(self, push: Push) -> None:
        """QUEUED: its unit goes to the committer, which settles the unit's future once the
        shared transaction committed (or failed)."""
        if push.state is S.RECEIVED:
            push.move(S.QUEUED)
        message = push.message
        ran = self._committer.enqueue(
            partial(self._work, message=message, late=push.late),
            Hints(message.openid, message.dedupe_key),
        )
        ran.add_done_callback(partial(self._ran, push))

    async def _work(self, uow: UnitOfWork, *, message: Inbound, late: bool) -> Outcome:
        """The push's unit, in the shared transaction: the stored answer, or the bot's."""
        stored = uow.get(ANSWERS, message.dedupe_key)
        if stored is UNKNOWN:
            stored = (
                await uow.conn.execute(
                    _STORED.where(inbound_messages.c.dedupe_key == message.dedupe_key)
                )
            ).first()
        if stored is not None:
            if late:
                await self._queue_late_reply(uow.conn, message, stored.reply_text)
            return Outcome(stored.reply_text, S.DUPLICATE)
        now = self._clock.now()
        await note_user(uow, message, now)
        # A hung handler would hold the shared transaction: the committer's time limit
        # (group_commit.UnitTimeout) turns it into an apology, recorded like any failure.
        reply = await self._bot.handle(uow.conn, message, now)
        await self._record(uow, message, "replied" if reply else "no_reply", reply)
        if late:
            await self._queue_late_reply(uow.conn, message, reply)
        return Outcome(reply, S.HANDLED)

    def _ran(self, push: Push, ran: asyncio.Future[Any]) -> None:
        """The unit's transaction ended: its outcome, or a failure sorted (tried again,
        apologised for, or left for later when the database is away)."""
        try:
            if ran.cancelled():
                self._queue(push)  # its transaction never ran it: run it again
                return
            error = ran.exception()
            if error is None:
                self._committed(push, ran.result())
                return
            cause = unavailable(error)
            if cause is not None:
                # One line when the outage starts and one when it ends, with a count: not a
                # line, let alone a traceback, per push while it lasts.
                self.availability.failed(cause)
                self._committed(push, UNAVAILABLE)
            elif isinstance(error, sa_exc.IntegrityError) and push.tries == 0:
                push.tries += 1
                self._queue(push)  # another process recorded it first: read its answer
            else:
                log.error("push %s failed in the bot", push.message.dedupe_key[:24], exc_info=error)
                self._record_failure(push)
        except Exception:  # noqa: BLE001 - the answer must always settle
            self._give_up(push)

    def _record_failure(self, push: Push) -> None:
        """Still QUEUED: a unit of its own records the apology (and queues it if late)."""
        message, late, apology = push.message, push.late, say("apology")

        async def work(uow: UnitOfWork) -> Outcome:
            await self._record(uow, message, "failed", apology)
            if late:
                await self._queue_late_reply(uow.conn, message, apology)
            return Outcome(apology, S.FAILED)

        self._committer.enqueue(work).add_done_callback(partial(self._failure_recorded, push))

    def _failure_recorded(self, push: Push, ran: asyncio.Future[Any]) -> None:
        try:
            error = ran.exception() if not ran.cancelled() else None
            if error is None:
                self._committed(push, UNAVAILABLE if ran.cancelled() else ran.result())
            elif isinstance(error, sa_exc.IntegrityError):
                push.tries = 0  # recorded meanwhile by another process: read its answer
                self._queue(push)
            else:
                self._committed(push, UNAVAILABLE)
        except Exception:  # noqa: BLE001 - the answer must always settle
            self._give_up(push)

    def _committed(self, push: Push, outcome: Outcome) -> None:
        """HANDLED, DUPLICATE, FAILED or UNAVAILABLE: the end for a push the webhook waits
        for; a late one goes on to LATE (answered through the outbox) or JOURNALED."""
        if not push.late:
            push.move(outcome.status)
            self._settle(push, outcome)
        elif outcome.status is S.UNAVAILABLE:
            push.move(S.JOURNALED)  # stays journaled; the replayer starts it again
            self._settle(push, outcome)
        else:
            push.move(outcome.status)
            if not outcome.reply:
                self._answered_late(push, outcome)
                return
            # It may have become late after its unit began: make sure the reply is queued
            # (under its own key, so a reply the unit queued already is not sent twice).
            reply = outcome.reply
            queued = self._committer.enqueue(
                lambda uow: self._queue_late_reply(uow.conn, push.message, reply)
            )
            queued.add_done_callback(partial(self._late_reply_queued, push, outcome))

    def _late_reply_queued(self, push: Push, outcome: Outcome, queued: asyncio.Future[Any]) -> None:
        try:
            if queued.cancelled() or queued.exception() is not None:
                log.error(
                    "push %s: its late reply could not be queued",
                    push.message.dedupe_key[:24],
                    exc_info=None if queued.cancelled() else queued.exception(),
                )
                push.move(S.JOURNALED)  # the replayer finds its stored answer and queues it
                self._settle(push, UNAVAILABLE)
                return
            self._on_outbox()
            self._answered_late(push, outcome)
        except Exception:  # noqa: BLE001 - the answer must always settle
            self._give_up(push)

    def _answered_late(self, push: Push, outcome: Outcome) -> None:
        """LATE: the answer is in the outbox, so the journal need not hold the push."""
        self._spool.resolve(push.message.dedupe_key)
        push.move(S.LATE)
        self._settle(push, outcome)

    def _settle(self, push: Push, outcome: Outcome) -> None:
        """The push ended: hand over its outcome, and start the member's next push."""
        message = push.message
        self._under_way.pop(message.dedupe_key, None)
        if outcome.status is S.DUPLICATE:
            self._metrics.duplicates.labels(stage="stored").inc()
        if outcome.status is not S.UNAVAILABLE:
            self.availability.worked()
        self._metrics.message(metric_kind(message), outcome.status.value)
        push.answer.set_result(outcome)
        if push.next is not None:
            self._queue(push.next)
        elif self._last_of.get(message.openid) is push:
            del self._last_of[message.openid]

    def _give_up(self, push: Push) -> None:
        """Whatever went wrong in a step (a bug), the push ends, as if the database were away:
        UNAVAILABLE, or JOURNALED when late."""
        log.exception("push %s could not be resolved", push.message.dedupe_key[:24])
        if not push.answer.done():
            end = S.JOURNALED if push.late else S.UNAVAILABLE
            if end in MOVES[push.state]:
                push.move(end)
            self._settle(push, UNAVAILABLE)

    # --- what the webhook and the replayer ask -----------------------------------------

    def push_of(self, message: Inbound) -> Push | None:
        """The push under way with this message's dedupe key, if any."""
        return self._under_way.get(message.dedupe_key)

    @property
    def under_way(self) -> int:
        """Pushes submitted and not yet answered."""
        return len(self._under_way)

    def full(self) -> bool:
        """Whether as many pushes are under way as memory is allowed to hold."""
        return len(self._under_way) >= self._capacity

    def expected_wait_s(self) -> float:
        """How long a push submitted now would likely wait for its transaction."""
        return self._committer.expected_wait_s()

    async def stop_waiting(self, message: Inbound) -> None:
        """The webhook answers `success` without an answer: journal the push (on disk
        before the answer leaves); its answer follows as a customer-service message."""
        push = self._under_way.get(message.dedupe_key)
        if push is not None:
            push.late = True
        await self._spool.journal(message.dedupe_key, message.xml)

    def not_late(self, message: Inbound) -> None:
        """The push could not be journaled: it is not answered `success`, so its answer
        must not go out as a late reply either (WeChat's retry will collect it)."""
        push = self._under_way.get(message.dedupe_key)
        if push is not None:
            push.late = False

    async def shed(self, message: Inbound) -> None:
        """Too much under way: journal the push without starting it. The replayer starts it
        when there is room, and its answer follows as a customer-service message."""
        await self._spool.journal(message.dedupe_key, message.xml)

    async def replay(self) -> int:
        """Resubmit journaled pushes not under way, as many as there is room for (half the
        capacity, so live pushes keep the other half); return how many were resubmitted."""
        count = 0
        room = self._capacity // 2 - len(self._under_way)
        if room <= 0:
            return 0
        for key, xml in self._spool.pending(limit=room + len(self._under_way)):
            if count >= room:
                break
            if key in self._under_way:
                continue
            try:
                message = read_inbound(xml, self._clock)
            except PushRejected:
                self._spool.resolve(key)
                continue
            self.submit(message, late=True)
            count += 1
        return count

    async def drain(self, grace_s: float = 5.0) -> None:
        """Wait up to `grace_s` for pushes under way, then abandon them (they are journaled
        or uncommitted, so the next process or WeChat's retry handles them)."""
        if not self._under_way:
            return
        answers = [push.answer for push in self._under_way.values()]
        _, pending = await asyncio.wait(answers, timeout=grace_s)
        if pending:
            log.warning("shutdown abandoned %d pushes under way", len(pending))

    # --- the records a unit writes -------------------------------------------------------

    async def _record(
        self, uow: UnitOfWork, message: Inbound, outcome: str, reply: str | None
    ) -> None:
        # Deferred to the batch's flush: the unique index on dedupe_key still makes a
        # second process's copy fail at commit, and the batch is then retried unit by unit.
        await uow.defer(
            _RECORD,
            {
                "dedupe_key": message.dedupe_key,
                "openid": message.openid,
                "msg_type": message.msg_type,
                "event": message.event,
                "created_at": message.created_at,
                "received_at": self._clock.now(),
                "payload": message.xml,
                "outcome": outcome,
                "reply_text": reply,
            },
        )

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


async def note_user(uow: UnitOfWork, message: Inbound, now: Any) -> None:
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
    statement = upsert(uow.conn, wechat_users, ["openid"], list(changes))
    await uow.defer(statement, {"openid": message.openid, "first_seen_at": now, **changes})


_RECORD = insert(inbound_messages)
_STORED = select(
    inbound_messages.c.dedupe_key, inbound_messages.c.outcome, inbound_messages.c.reply_text
)
# The stored answer of each push in the batch, by dedupe key (None: not handled before).
ANSWERS: Kind[Any] = Kind("answer", tables=("inbound_messages",), key="dedupe_key")


@lru_cache(maxsize=16)
def _stored_of(size: int) -> Any:
    return _STORED.where(in_list(inbound_messages.c.dedupe_key, size))


async def prefetch_answers(uow: UnitOfWork) -> None:
    """One query for the stored answers of every push in the batch (nearly always none)."""
    keys = [hint.dedupe_key for hint in uow.hints if hint.dedupe_key]
    answers: dict[str, Any] = dict.fromkeys(keys)
    answers.update({row.dedupe_key: row for row in await rows_in(uow.conn, _stored_of, keys)})
    uow.fill(ANSWERS, answers)
