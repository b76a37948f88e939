"""Writing to the outbox, and the dispatcher that sends what is written.

Domain code writes intents (`notify.intents`) inside its own transaction; it never calls
WeChat.
The dispatcher claims due rows in batches (a conditional UPDATE, so two processes never
send the same row), chooses the channel open now, sends with bounded concurrency, and
records every attempt.

What a killed process leaves behind is decided row by row (see `_CallLog`). Each row's
`calling_at` is committed before its own call to WeChat starts, and what came of the call
as soon as it returns: a row that was sent is `sent`, whatever became of the rest of its
batch; a claimed row without `calling_at` never reached WeChat (or was refused) and is
simply sent again; a template left with it is sent again with the same client_msg_id
(WeChat drops a second copy); a customer-service message left with it was under way at the
crash and may have arrived, and that API has no idempotency key: it becomes `unknown`, and
a member's branch secretary gets a to-do to make sure it arrived. Those are at most the
`concurrency` calls under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.clock import Clock
from bangfu_bot.members.service import person_for_openid, secretaries_of
from bangfu_bot.notify.channels import quiet_until, shorten, window_room
from bangfu_bot.notify.intents import Todo, write
from bangfu_bot.notify.models import outbox, outbox_attempts
from bangfu_bot.notify.platform import ErrorKind, Platform, WeChatAPIError
from bangfu_bot.notify.templates import GENERIC, Catalogue, Template, load_catalogue
from bangfu_bot.settings import Settings, SettingsError
from bangfu_bot.texts import speaker, texts

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# Rows one dispatcher pass sends at most, so stale claims and the `also` hooks (the mass
# calls of new broadcasts) are looked at every few seconds even under a big backlog.
PASS_LIMIT = 2_000
# A row left "sending" by a process that died is taken up again after this long.
STALE_CLAIM = timedelta(minutes=5)
# Only the leader dispatches, so a claim older than the dispatcher itself was made by a
# leader that died or stepped down: it is taken up once it is this old (a deposed leader
# stops within a leadership check, 15 s), not after STALE_CLAIM.
TAKEOVER = timedelta(seconds=30)
# A template WeChat refuses for its id or a field's value: the notice goes with the generic
# template (the cause as the log names it).
TEMPLATE_REFUSED = {40037: "invalid template id", 47003: "a field's value is not allowed"}
# How much of an `unknown` message its to-do quotes on its first line (the 待办 list).
UNKNOWN_START = 30


def backoff(attempts: int) -> timedelta:
    """Wait before the next try: 10 s, 20 s, 40 s ... capped at 30 minutes."""
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 1800))


@dataclass(frozen=True)
class DeliveryRules:
    """How the dispatcher may reach people (from Settings)."""

    template_id: str = ""  # the generic template
    account_type: str = "service"
    tz: ZoneInfo = ZoneInfo("Asia/Shanghai")
    quiet_start: time = time(8, 0)
    quiet_end: time = time(21, 0)
    concurrency: int = 16  # calls to WeChat under way at once
    # The template of each kind of notice (templates.toml), by kind; the generic one is
    # `template_id`.
    template_ids: Mapping[str, str] = field(default_factory=dict)
    catalogue: Catalogue = field(default_factory=Catalogue)

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryRules:
        """Template ids, awake hours, time zone and concurrency as configured; the
        templates of the kinds of notice from conversations/templates.toml (the sandbox has
        one of each)."""
        awake_start, awake_end = settings.awake_hours
        catalogue = load_catalogue(settings.conversations_dir)
        ids = dict(settings.wechat_templates)
        unknown = sorted(set(ids) - set(catalogue.kinds))
        if unknown:
            raise SettingsError(
                f"BANGFU_WECHAT_TEMPLATES: unknown kind {unknown[0]!r} "
                f"(templates.toml has {', '.join(catalogue.kinds)})"
            )
        generic = ids.pop(GENERIC, "") or settings.template_id
        if settings.sandbox and not settings.has_credentials:
            for kind in catalogue.kinds:
                if kind != GENERIC:
                    ids.setdefault(kind, f"{generic}-{kind}")
        return cls(
            template_id=generic,
            account_type=settings.wechat_account_type,
            tz=settings.tz,
            quiet_start=awake_start,
            quiet_end=awake_end,
            concurrency=settings.outbox_concurrency,
            template_ids=ids,
            catalogue=catalogue,
        )

    @property
    def templates(self) -> bool:
        """Template messages need a verified service account and a template id."""
        return self.account_type == "service" and bool(self.template_id or self.template_ids)

    def all_templates(self) -> dict[str, Template]:
        """Every template id in use and the template it is (the sandbox registers these)."""
        used = {self.template_id: self.catalogue.kinds[GENERIC]} if self.template_id else {}
        for kind, template_id in self.template_ids.items():
            if kind in self.catalogue.kinds:
                used[template_id] = self.catalogue.kinds[kind]
        return used


@dataclass(eq=False)
class _Send:
    """One claimed row on its way: the call to make next, the attempts made and what
    becomes of the row, kept until they are written: as its call ends (`_CallLog.ended`),
    else by the batch's next recording transaction."""

    row: Any
    call: str | None = None  # "custom" | "template": the next call; None: none left
    attempts: list[dict[str, Any]] = field(default_factory=list)  # not written yet
    values: dict[str, Any] | None = None  # the row's new columns, not written yet
    why: str | None = None  # escalate to the secretary, for this reason
    last_errcode: int | None = None
    done: bool = False  # nothing more to do or write for this row in this batch
    uses_window: bool = False  # counted in Dispatcher._window_taken until recorded
    marked: bool | None = None  # its call's `calling_at`: committed, failed, or not yet


class _CallLog:
    """Commits where each row's call to WeChat stands: its `calling_at` just before the call
    starts (`mark`), and what came of it as soon as it returns (`ended`). Calls starting or
    ending together share the statements (group commit), on one autocommit connection kept
    for the round of calls, under the dispatcher's SQLite write lock.

    The guarantees. A row's call starts only after the statement setting its `calling_at`
    has committed, so a claimed row without `calling_at` never reached WeChat and is sent
    again after a crash, whatever else happened to its batch. A call that returned has its
    attempt committed and its row's outcome: `sent` (with its msgid), or due again / failed
    as the error says, or, refused with the batch to decide what next (the secretary, or a
    template in the batch's second round), its `calling_at` cleared (it did not arrive, and
    is sent again after a crash). A call queues its outcome before it gives its slot back,
    and a turn writes the queued outcomes before the marks (and no mark if they fail), so
    the call that takes that slot starts only after the outcome is committed: a crash leaves
    at most `concurrency` rows marked without an outcome, the calls under way (or whose
    outcome was being written). Those alone are in doubt. Calls that get their slot or
    return while a turn is writing wait for it and are written together by the next turn;
    a round of calls costs a few statements per such group, not a transaction per row.

    A customer-service call's attempt row is what the database counts against the user's
    window (`window_room`); the dispatcher counts it in `_window_taken` until then. The
    attempts are written and `counted` told under `counting`, which the claim also holds
    while it reads the windows, so the claim sees each such call in exactly one of the two.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        writing: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
        counting: asyncio.Lock,
        counted: Callable[[list[_Send]], None],
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._writing = writing
        self._counting = counting
        self._counted = counted
        self._starting: list[_Send] = []
        self._ended: list[_Send] = []
        self._turn = asyncio.Lock()  # one turn of statements at a time
        self._conn: AsyncConnection | None = None  # autocommit: each statement commits

    async def mark(self, send: _Send) -> bool:
        """Whether the row's `calling_at` is committed (False: its call must not start)."""
        send.marked = None
        self._starting.append(send)
        async with self._turn:
            if send.marked is None:  # not written by the turn before: write all that wait
                await self._write()
        return bool(send.marked)

    def ended(self, send: _Send) -> Awaitable[None]:
        """Queue what came of the row's call (its attempts and new columns) at once, while
        the call still holds its slot; await the answer to have it committed. What cannot be
        written then is left to the batch's recording transaction."""
        self._ended.append(send)
        return self._write_ended_soon(send)

    async def _write_ended_soon(self, send: _Send) -> None:
        async with self._turn:
            if any(waiting is send for waiting in self._ended):  # not written yet
                await self._write()

    async def _write(self) -> None:
        starting, self._starting = self._starting, []
        ended, self._ended = self._ended, []
        ok = False
        try:
            async with self._writing():
                ok = await self._write_turn(starting, ended)
        finally:
            for queued in starting:
                queued.marked = ok

    async def _write_turn(self, starting: list[_Send], ended: list[_Send]) -> bool:
        """Outcomes first, then marks: a slot given back by a call that ended is taken by a
        call marked only once that outcome is committed. Whether it all committed (if not,
        no call starts now, and the batch's recording writes what came of the others).

        On SQLite a turn with outcomes is one transaction (an executemany would commit each
        row); on PostgreSQL each statement commits on its own."""
        whole = bool(ended) and self._engine.dialect.name == "sqlite"
        before = [(send, send.values) for send in ended]
        conn: AsyncConnection | None = None
        try:
            conn = await self._connection()
            if whole:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            attempts = [attempt for send in ended for attempt in send.attempts]
            if attempts:
                async with self._counting:
                    await conn.execute(insert(outbox_attempts), attempts)
                    if not whole:
                        self._attempts_written(ended)
            # Refused, with what next left to the batch: it did not arrive.
            await _write_outcomes(
                conn,
                ended,
                lambda send: send.values if send.values is not None else {"calling_at": None},
            )
            if starting:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_([queued.row.id for queued in starting]))
                    .values(calling_at=self._clock.now())
                )
            if whole:
                await conn.exec_driver_sql("COMMIT")
                self._attempts_written(ended)  # the claim waits for the write lock
            return True
        except BaseException as exc:
            if whole:  # nothing of the turn was written
                for send, values in before:
                    send.values = values
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.exec_driver_sql("ROLLBACK")
            if not isinstance(exc, Exception):
                raise
            log.warning(
                "outbox: could not record %d calls as ended and mark %d as starting: %s",
                len(ended),
                len(starting),
                type(exc).__name__,
            )
            await self.close()
            return False

    def _attempts_written(self, ended: list[_Send]) -> None:
        for send in ended:
            send.attempts = []
        self._counted(ended)

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def close(self) -> None:
        """Give the connection back (at the end of each round of calls)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class Dispatcher:
    """Sends due outbox rows by the best channel open now, and records each attempt.

    Inside the user's window: a customer-service message. Else a template message where the
    account allows. Else, or when the user is unreachable, the member's branch secretary gets
    a to-do to tell them by phone or visit. Busy and rate-limit errors retry with backoff.

    Rows go in batches: one transaction claims a batch and marks each row with the channel
    it will be sent by, the calls run concurrently (at most `rules.concurrency` at once; one
    user's rows in order), each after its row's `calling_at` is committed and each one's
    attempt and outcome committed as it returns (calls starting or ending together share
    those commits, see `_CallLog`), and one transaction records what is left: escalations
    and the channel of the calls still to come. A customer-service message refused as
    undeliverable is retried as a template in a second round of the same batch. The next
    batch is claimed while the calls of one are under way.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        client: Platform,
        clock: Clock,
        poll_s: float = 2.0,
        rules: DeliveryRules | None = None,
        also: list[Callable[[], Awaitable[Any]]] | None = None,
    ) -> None:
        self._also = also or []
        self._engine = engine
        self._client = client
        self._clock = clock
        self._poll_s = poll_s
        self._rules = rules or DeliveryRules()
        self._slots = asyncio.Semaphore(self._rules.concurrency)
        # SQLite has one writer at a time: the dispatcher's own transactions (a claim under
        # way beside the calls' marks) queue here rather than in SQLite's sleeping busy wait.
        self._sqlite_writes = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # Held while a claim reads the windows and while ended calls' attempts are written.
        self._counting = asyncio.Lock()
        self._log = _CallLog(engine, clock, self._writing, self._counting, self._window_recorded)
        self._started_at: datetime | None = None  # set by start()
        # Enough rows per batch to keep every slot busy for several calls, so the two
        # transactions of a batch are spread over many sends.
        self._batch = max(32, 8 * self._rules.concurrency)
        # Customer-service messages decided but whose attempt is not written yet, by user:
        # the next batch is claimed while this one is under way, and must not count on the
        # same window quota.
        self._window_taken: Counter[str] = Counter()
        self._wake = asyncio.Event()
        # One pass at a time in this process: flush() waits for the loop's pass (and its mass
        # calls) instead of racing it for the same rows and the same SQLite write lock.
        self._pass = asyncio.Lock()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._invalid_templates: set[str] = set()  # refused with 40037 in this process
        self._refusals_logged: set[tuple[str, int]] = set()

    def start(self) -> None:
        """Start the sending loop."""
        self._stopping = False
        self._started_at = self._clock.now()
        self._task = asyncio.create_task(self._loop(), name="outbox-dispatcher")

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop the sending loop: calls under way finish and are recorded, rows not yet
        called go back to pending (cancelling only if it does not stop in time, so a batch
        is not cut off in the middle of its database work)."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        done, _ = await asyncio.wait([self._task], timeout=grace_s)
        if not done:
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def flush(self, timeout: float = 10) -> None:
        """Send everything due now, waiting for rows another task has claimed (tests, the
        sandbox and the demo use this to see what a member would have received)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            await self.send_due()
            now = self._clock.now()
            async with self._engine.connect() as conn:
                waiting = (
                    await conn.execute(
                        select(func.count())
                        .select_from(outbox)
                        .where(
                            outbox.c.status.in_(["pending", "sending"]),
                            outbox.c.next_attempt_at <= now,
                        )
                    )
                ).scalar_one()
            if not waiting:
                return
            await asyncio.sleep(0.02)

    def wake(self) -> None:
        """Look for due rows now rather than at the next poll."""
        self._wake.set()

    def _writing(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Held around each of the dispatcher's write transactions (on SQLite only)."""
        return self._sqlite_writes or contextlib.nullcontext()

    async def _loop(self) -> None:
        while not self._stopping:
            full = False
            try:
                async with self._pass:
                    full = await self._send_due(PASS_LIMIT, lambda: self._stopping) >= PASS_LIMIT
            except Exception as exc:  # noqa: BLE001 - keep dispatching after a bad moment
                log.warning("outbox dispatch failed: %s", type(exc).__name__)
            if full:
                continue  # a backlog: the next pass at once, not at the next poll
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            except TimeoutError:
                pass
            if not self._stopping:
                self._wake.clear()

    async def send_due(self, limit: int = PASS_LIMIT) -> int:
        """Send rows that are due (at most `limit`); return how many were attempted."""
        async with self._pass:
            return await self._send_due(limit, lambda: False)

    async def _send_due(self, limit: int, stop: Callable[[], bool]) -> int:
        async with self._writing(), self._engine.begin() as conn:
            await _recover_stale_claims(conn, self._clock.now(), before=self._started_at)
        for work in self._also:
            await work()  # e.g. the mass calls of pending broadcasts
        attempted = 0
        claiming: asyncio.Task[list[_Send]] | None = None
        if not stop():
            claiming = asyncio.create_task(self._claim(min(self._batch, limit)))
        try:
            while claiming is not None:
                task, claiming = claiming, None
                batch = await task
                if not batch:
                    break
                attempted += len(batch)
                if attempted < limit and not stop():
                    # The next batch is claimed while this one's calls are under way; its
                    # calls start after this batch is recorded, so a user's rows stay in order.
                    claiming = asyncio.create_task(self._claim(min(self._batch, limit - attempted)))
                await self._deliver(batch, stop, claiming)
        finally:
            if claiming is not None:  # this pass ended early: the claimed rows go back
                await self._release(await claiming)
        return attempted

    # -- one batch ------------------------------------------------------------------------

    async def _claim(self, size: int) -> list[_Send]:
        """Claim up to `size` due rows (urgent first) and decide each one's channel, in one
        transaction, before any call is made."""
        now = self._clock.now()
        quiet = quiet_until(now, self._rules.tz, self._rules.quiet_start, self._rules.quiet_end)
        async with self._writing(), self._engine.begin() as conn:
            if quiet is not None:
                # Quiet hours: non-urgent rows wait for the morning (nothing is dropped).
                await conn.execute(
                    update(outbox)
                    .where(
                        outbox.c.status == "pending",
                        outbox.c.urgent.is_(False),
                        outbox.c.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=quiet)
                )
            due = (
                select(outbox.c.id)
                .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
                .order_by(outbox.c.urgent.desc(), outbox.c.id)
                .limit(size)
                .with_for_update(skip_locked=True)
            )  # PostgreSQL: leave others' claims
            # The status condition again: only the dispatcher whose UPDATE changed a row
            # from pending owns it, so two dispatchers never send one row.
            claimed = (
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(due.scalar_subquery()), outbox.c.status == "pending")
                    .values(status="sending", next_attempt_at=now, channel=None, calling_at=None)
                    .returning(*outbox.c)
                )
            ).all()
            rows = sorted(claimed, key=lambda row: (not row.urgent, row.id))
            batch = await self._choose_channels(conn, rows, now)
        return batch

    async def _choose_channels(
        self, conn: AsyncConnection, rows: list[Any], now: datetime
    ) -> list[_Send]:
        """The channel open now for each row, written before the calls (the in-flight mark
        `_recover_stale_claims` reads). A user's window quota is shared by their rows."""
        batch = []
        async with self._counting:  # no call's attempt written between the two counts
            room = await window_room(conn, {row.openid for row in rows}, now)
            for row in rows:
                send = _Send(row)
                if room.get(row.openid, 0) > self._window_taken[row.openid]:
                    self._window_taken[row.openid] += 1
                    send.call, send.uses_window = "custom", True
                elif self._can_template(row):
                    send.call = "template"
                else:
                    send.why = "why_window"
                batch.append(send)
        await _mark_channels(conn, batch)
        return batch

    async def _deliver(
        self, batch: list[_Send], stop: Callable[[], bool], claiming: asyncio.Task[Any] | None
    ) -> None:
        """Make the batch's calls and record them; a second round sends templates for the
        customer-service messages that were refused."""
        while True:
            calls = [send for send in batch if send.call is not None]
            if calls:
                await self._call_all(calls, stop)
            if claiming is not None:
                # The next batch's claim finishes first: one write transaction at a time.
                await asyncio.wait([claiming])
            try:
                await self._record(batch)
            finally:
                self._window_recorded(batch)
            if not any(send.call is not None for send in batch):
                return

    def _window_recorded(self, batch: list[_Send]) -> None:
        # Once its customer-service call's attempt is written (or the call will not be
        # made), a row's use of the window is counted by the database, not here.
        for send in batch:
            if send.uses_window and send.call != "custom":
                send.uses_window = False
                self._window_taken[send.row.openid] -= 1
                if not self._window_taken[send.row.openid]:
                    del self._window_taken[send.row.openid]

    async def _release(self, batch: list[_Send]) -> None:
        """Claimed rows that will not be sent now: pending again, no call made."""
        for send in batch:
            send.call = None
        self._window_recorded(batch)
        if batch:
            async with self._writing(), self._engine.begin() as conn:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_([send.row.id for send in batch]))
                    .values(status="pending", channel=None)
                )

    async def _call_all(self, calls: list[_Send], stop: Callable[[], bool]) -> None:
        by_user: defaultdict[str, list[_Send]] = defaultdict(list)
        for send in calls:
            by_user[send.row.openid].append(send)
        try:
            await asyncio.gather(*(self._call_in_order(sends, stop) for sends in by_user.values()))
        finally:
            await self._log.close()

    async def _call_in_order(self, sends: list[_Send], stop: Callable[[], bool]) -> None:
        # One user's messages go one after another, so a reply split in parts arrives in order.
        for send in sends:
            async with self._slots:
                if stop() or not await self._log.mark(send):
                    send.call = None  # never called: due again for the next dispatcher
                    send.values = {"status": "pending", "channel": None}
                    continue
                try:
                    await self._call(send)
                except Exception:  # a bug in one call must not lose the batch's record
                    # Left "sending" with its channel, as if the process had died mid-call:
                    # `_recover_stale_claims` decides (unknown for customer-service).
                    log.exception("outbox row %s: call failed unexpectedly", send.row.id)
                    send.call, send.done = None, True
                    continue
                # Queued before the slot is given back (see `_CallLog`).
                written = self._log.ended(send)
            await written

    async def _call(self, send: _Send) -> None:
        channel, row = send.call, send.row
        send.call = None
        try:
            if channel == "custom":
                answer = await self._client.send_text(openid=row.openid, content=row.content)
            else:
                answer = await self._send_template(send)
        except WeChatAPIError as error:
            self._attempt(send, channel, error.errcode, error.errmsg)
            self._after_error(send, channel, error)
            return
        self._attempt(send, channel, 0, "ok")
        # A template's msgid is what its TEMPLATESENDJOBFINISH receipt names.
        msgid = (int(answer.get("msgid") or 0) or None) if channel == "template" else None
        send.values = {
            "status": "sent",
            "channel": channel,
            "attempts": row.attempts + 1,
            "sent_at": self._clock.now(),
            "wechat_msgid": msgid,
        }

    async def _send_template(self, send: _Send) -> dict[str, Any]:
        """The template of the row's kind of notice; if WeChat refuses it (an invalid
        template id, or a field it will not take), the generic template, once."""
        row = send.row
        chosen = self._template(row)
        if chosen is None:  # nothing configured fits any more (not reached in practice)
            raise WeChatAPIError(errcode=40037, errmsg="no template", endpoint="template")
        kind, template_id, data = chosen
        try:
            return await self._client.send_template(
                openid=row.openid,
                template_id=template_id,
                data=data,
                client_msg_id=f"outbox-{row.id}",
            )
        except WeChatAPIError as error:
            generic = self._template(row, generic=True)
            if error.errcode not in TEMPLATE_REFUSED or kind == GENERIC or generic is None:
                raise
            self._attempt(send, "template", error.errcode, error.errmsg)
            self._template_refused(kind, template_id, error.errcode)
        _, template_id, data = generic
        return await self._client.send_template(
            openid=row.openid,
            template_id=template_id,
            data=data,
            client_msg_id=f"outbox-{row.id}-{GENERIC}",
        )

    def _template_refused(self, kind: str, template_id: str, errcode: int) -> None:
        """One log line per kind and cause; an invalid id is not tried again by this
        process (every notice of the kind goes with the generic template)."""
        if errcode == 40037:
            self._invalid_templates.add(template_id)
        if (kind, errcode) in self._refusals_logged:
            return
        self._refusals_logged.add((kind, errcode))
        log.warning(
            "outbox: the %s template %s was refused with %s (%s); sent with the generic "
            "template instead",
            kind,
            template_id,
            errcode,
            TEMPLATE_REFUSED[errcode],
        )

    def _can_template(self, row: Any) -> bool:
        """Whether the row can go as a template (the generic one always fits)."""
        if self._rules.account_type != "service":
            return False
        return bool(self._rules.template_id) or self._template(row) is not None

    def _template(
        self, row: Any, *, generic: bool = False
    ) -> tuple[str, str, dict[str, str]] | None:
        """The kind of notice, template id and data a row is sent with as a template: its
        kind's template filled from its facts, else the generic one (or None: none fits)."""
        rules = self._rules
        if rules.account_type != "service":
            return None
        catalogue = rules.catalogue
        facts = row.facts if isinstance(row.facts, dict) else None
        kind = GENERIC if generic else catalogue.kind_of(row.kind, facts)
        subject = _title(row.kind)
        if facts and facts.get("notice") in catalogue.kinds:
            subject = catalogue.kinds[facts["notice"]].title or subject
        now, tz = self._clock.now(), rules.tz
        template_id = rules.template_ids.get(kind, "")
        if kind != GENERIC and template_id and template_id not in self._invalid_templates:
            data = catalogue.fill(kind, facts, content=row.content, subject=subject, now=now, tz=tz)
            if data is not None:
                return kind, template_id, data
        if not rules.template_id:
            return None
        data = catalogue.fill(GENERIC, facts, content=row.content, subject=subject, now=now, tz=tz)
        return None if data is None else (GENERIC, rules.template_id, data)

    def _attempt(self, send: _Send, channel: str | None, errcode: int, errmsg: str) -> None:
        send.attempts.append(
            {
                "outbox_id": send.row.id,
                "at": self._clock.now(),
                "channel": channel,
                "errcode": errcode,
                "errmsg": errmsg[:200],
            }
        )
        send.last_errcode = errcode

    def _after_error(self, send: _Send, channel: str | None, error: WeChatAPIError) -> None:
        if channel == "custom" and error.kind == ErrorKind.UNDELIVERABLE:
            # The window closed or its quota ran out meanwhile: the next channel down.
            if self._can_template(send.row):
                send.call = "template"
            else:
                send.why = "why_window"
        elif channel == "custom" or error.kind == ErrorKind.RETRY:
            send.values = self._retry_or_fail(send.row, error)
        else:
            send.why = _why(error.errcode)

    def _retry_or_fail(self, row: Any, error: WeChatAPIError) -> dict[str, Any]:
        log.info("outbox row %s: errcode %s", row.id, error.errcode)
        attempts = row.attempts + 1
        if error.kind == ErrorKind.RETRY and attempts < MAX_ATTEMPTS:
            return {
                "status": "pending",
                "attempts": attempts,
                "next_attempt_at": self._clock.now() + backoff(attempts),
            }
        return {"status": "failed", "attempts": attempts}

    async def _record(self, batch: list[_Send]) -> None:
        """One transaction for what the batch's last round did and `_CallLog` did not write
        as the calls ended: attempts and final states (of rows not called, or whose
        writing failed), escalations, and the channel of calls still to come."""
        now = self._clock.now()
        open_ = [send for send in batch if not send.done]
        escalated = False
        async with self._writing(), self._engine.begin() as conn:
            attempts = [attempt for send in open_ for attempt in send.attempts]
            if attempts:
                await conn.execute(insert(outbox_attempts), attempts)
            for send in open_:
                if send.why is not None:
                    escalated = True
                    send.values = await self._escalate(conn, send, now)
            await _write_outcomes(conn, open_)
            await _mark_channels(conn, [send for send in open_ if send.call is not None])
        for send in open_:
            send.attempts = []
            send.done = send.call is None
        if escalated:
            self.wake()  # the to-dos' own pushes are due now

    async def _escalate(self, conn: AsyncConnection, send: _Send, now: datetime) -> dict[str, Any]:
        """Ask the member's branch secretary to tell them in person (a to-do)."""
        if await escalate(conn, row=send.row, why=send.why or "why_failed", now=now):
            return {"status": "escalated", "channel": "escalated"}
        return {"status": "undeliverable"}


async def _mark_channels(conn: AsyncConnection, sends: list[_Send]) -> None:
    """Write each row's next channel (and the errcode that sent it there) before the call;
    that channel's call has not started (`calling_at` is written just before it does)."""
    for channel in ("custom", "template"):
        ids = [send.row.id for send in sends if send.call == channel]
        if ids:
            await conn.execute(
                update(outbox).where(outbox.c.id.in_(ids)).values(channel=channel, calling_at=None)
            )
    refused = [
        {"b_id": send.row.id, "b_last_errcode": send.last_errcode}
        for send in sends
        if send.call is not None and send.last_errcode is not None
    ]
    if refused:
        await _update_many(conn, refused)


async def _write_outcomes(
    conn: AsyncConnection,
    sends: list[_Send],
    values_of: Callable[[_Send], dict[str, Any] | None] = lambda send: send.values,
) -> None:
    """Each row's new columns, in one executemany UPDATE per set of columns written; a row's
    `values` are cleared once its UPDATE has run."""
    groups: defaultdict[tuple[str, ...], list[tuple[_Send, dict[str, Any]]]] = defaultdict(list)
    for send in sends:
        new = values_of(send)
        if new is None:
            continue
        values = dict(new)
        if send.last_errcode is not None:
            values.setdefault("last_errcode", send.last_errcode)
        groups[tuple(sorted(values))].append(
            (send, {"b_id": send.row.id, **{f"b_{name}": value for name, value in values.items()}})
        )
    for group in groups.values():
        await _update_many(conn, [params for _, params in group])
        for send, _ in group:
            send.values = None


async def _update_many(conn: AsyncConnection, params: list[dict[str, Any]]) -> None:
    # Parameters are named b_<column> (bare column names are reserved in a SET clause).
    columns = [name[2:] for name in params[0] if name != "b_id"]
    statement = (
        update(outbox)
        .where(outbox.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}", type_=outbox.c[name].type) for name in columns})
    )
    await conn.execute(statement, params)


async def _recover_stale_claims(
    conn: AsyncConnection, now: datetime, before: datetime | None = None
) -> None:
    """Rows left "sending" by a dispatcher that died. A call that returned had its outcome
    committed (see `_CallLog`): `sent` and the rest are not "sending" and are left alone. One
    whose call had not started, or was refused (no `calling_at`), is simply due again; one
    that died during a template call is retried with the same client_msg_id (WeChat drops
    the duplicate); one that died during a customer-service call may have been delivered,
    and that API has no idempotency key: it is marked `unknown` rather than risk sending it
    twice, and a member's branch secretary is asked to make sure it arrived (channel
    `escalated`)."""
    old = outbox.c.next_attempt_at < now - STALE_CLAIM
    if before is not None:  # claimed before this dispatcher started: not its own
        old = old | (
            (outbox.c.next_attempt_at < before) & (outbox.c.next_attempt_at < now - TAKEOVER)
        )
    stale = (outbox.c.status == "sending") & old
    maybe_delivered = (
        await conn.execute(
            update(outbox)
            .where(stale, outbox.c.channel == "custom", outbox.c.calling_at.is_not(None))
            .values(status="unknown")
            .returning(*outbox.c)
        )
    ).all()
    await conn.execute(update(outbox).where(stale).values(status="pending"))
    told = [
        row.id
        for row in sorted(maybe_delivered, key=lambda row: row.id)
        if await escalate_unknown(conn, row=row, now=now)
    ]
    if told:
        await conn.execute(update(outbox).where(outbox.c.id.in_(told)).values(channel="escalated"))


async def _set(conn: AsyncConnection, row_id: int, **values: Any) -> None:
    await conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))


def _why(errcode: int) -> str:
    return {43004: "why_unfollowed", 43101: "why_blocked"}.get(errcode, "why_failed")


@lru_cache(maxsize=64)
def _title(kind: str) -> str:
    """A template's title field for a kind of row (the same for every row of it)."""
    return shorten(say(f"title_{kind}") if _has(f"title_{kind}") else say("title_default"))


def _has(key: str) -> bool:
    return key in texts("bangfu_bot.notify")


say = speaker("bangfu_bot.notify")


async def escalate(conn: AsyncConnection, *, row: Any, why: str, now: datetime) -> bool:
    """Give the recipient's branch secretary a to-do to pass the message on; False when
    nobody can (no binding, no secretary, or it already was a to-do for an official)."""
    return await _ask_secretaries(
        conn,
        row=row,
        now=now,
        key=f"escalate:{row.id}",
        text=lambda name: (
            say("escalate", name=name, content=row.content) + say("escalate_reason", why=say(why))
        ),
    )


async def escalate_unknown(conn: AsyncConnection, *, row: Any, now: datetime) -> bool:
    """A message that may or may not have reached a member (its sending was cut off): their
    branch secretary gets a to-do to make sure it did. False as for `escalate` (an
    official's to-do is not escalated: it is still in their 待办)."""
    start = shorten(row.content, UNKNOWN_START)
    whole = start == " ".join(row.content.split())

    def text(name: str) -> str:
        told = say("unknown_check", name=name, start=start)
        if not whole:
            told += say("unknown_whole", content=row.content)
        return told + say("unknown_reason")

    return await _ask_secretaries(conn, row=row, now=now, key=f"unknown:{row.id}", text=text)


async def _ask_secretaries(
    conn: AsyncConnection, *, row: Any, now: datetime, key: str, text: Callable[[str], str]
) -> bool:
    """A `tell_member` to-do, worded by `text(member's name)`, for each branch secretary of
    the row's recipient (the recipient left out); False when there is nobody to ask."""
    if row.kind == "todo":
        return False  # an official's to-do stays in 待办; escalating it would loop
    person = await person_for_openid(conn, row.openid)
    if person is None:
        return False
    secretaries = [s for s in await secretaries_of(conn, person.branch_id) if s != person.id]
    if not secretaries:
        return False
    told = text(person.name)
    await write(
        conn,
        [
            Todo(secretary_id, "tell_member", told, f"{key}:{secretary_id}", subject_id=person.id)
            for secretary_id in secretaries
        ],
        now=now,
    )
    return True


async def template_finished(
    conn: AsyncConnection, *, msgid: int, status: str, now: datetime
) -> None:
    """A TEMPLATESENDJOBFINISH receipt: delivered, or blocked/failed (then escalate)."""
    row = (await conn.execute(select(outbox).where(outbox.c.wechat_msgid == msgid))).first()
    if row is None:
        return
    if status == "success":
        await _set(conn, row.id, status="delivered")
        return
    why = "why_blocked" if "block" in status else "why_failed"
    if await escalate(conn, row=row, why=why, now=now):
        await _set(conn, row.id, status="escalated", channel="escalated")
    else:
        await _set(conn, row.id, status="failed")


async def status_counts(conn: AsyncConnection) -> dict[str, int]:
    """How many outbox rows are in each status; `unknown` rows a secretary was asked to make
    sure of are counted apart, as `unknown_escalated` (and not under `unknown`)."""
    rows = await conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    counts = {status: int(count) for status, count in rows}
    if counts.get("unknown"):
        told = int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(outbox)
                    .where(outbox.c.status == "unknown", outbox.c.channel == "escalated")
                )
            ).scalar_one()
        )
        if told:
            counts["unknown_escalated"] = told
            counts["unknown"] -= told
            if not counts["unknown"]:
                del counts["unknown"]
    return counts
