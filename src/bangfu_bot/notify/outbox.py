"""Writing to the outbox, and the dispatcher that sends what is written.

Domain code calls `queue_message` inside its own transaction; it never calls WeChat.
The dispatcher claims due rows one at a time (a conditional UPDATE, so two processes never
send the same row), chooses the channel open now, sends, and records every attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bangfu_bot.clock import Clock
from bangfu_bot.dbutil import insert_ignore
from bangfu_bot.notify.channels import quiet_until, shorten, window_allows
from bangfu_bot.notify.models import outbox, outbox_attempts
from bangfu_bot.texts import speaker, texts
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


@dataclass(frozen=True)
class DeliveryRules:
    """How the dispatcher may reach people (from Settings)."""

    template_id: str = ""
    account_type: str = "service"
    tz: ZoneInfo = ZoneInfo("Asia/Shanghai")
    quiet_start: time = time(8, 0)
    quiet_end: time = time(21, 0)

    @property
    def templates(self) -> bool:
        """Template messages need a verified service account and a template id."""
        return bool(self.template_id) and self.account_type == "service"


class Dispatcher:
    """Sends due outbox rows by the best channel open now, and records each attempt.

    Inside the user's window: a customer-service message. Else a template message where the
    account allows. Else, or when the user is unreachable, the member's branch secretary gets
    a to-do to tell them by phone or visit. Busy and rate-limit errors retry with backoff.
    """

    def __init__(
        self, *, engine: AsyncEngine, client: WeChatClient, clock: Clock, poll_s: float = 2.0,
        rules: DeliveryRules | None = None,
        also: list[Callable[[], Awaitable[Any]]] | None = None,
    ) -> None:
        self._also = also or []
        self._engine = engine
        self._client = client
        self._clock = clock
        self._poll_s = poll_s
        self._rules = rules or DeliveryRules()
        self._wake = asyncio.Event()
        # One pass at a time in this process: flush() waits for the loop's pass (and its mass
        # calls) instead of racing it for the same rows and the same SQLite write lock.
        self._pass = asyncio.Lock()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the sending loop."""
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="outbox-dispatcher")

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop the sending loop between rows (cancelling only if it does not stop in time,
        so a row is not cut off in the middle of its database work)."""
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
                waiting = (await conn.execute(select(func.count()).select_from(outbox).where(
                    outbox.c.status.in_(["pending", "sending"]),
                    outbox.c.next_attempt_at <= now))).scalar_one()
            if not waiting:
                return
            await asyncio.sleep(0.02)

    def wake(self) -> None:
        """Look for due rows now rather than at the next poll."""
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.send_due()
            except Exception as exc:  # noqa: BLE001 - keep dispatching after a bad moment
                log.warning("outbox dispatch failed: %s", type(exc).__name__)
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            except TimeoutError:
                pass
            if not self._stopping:
                self._wake.clear()

    async def send_due(self, limit: int = 200) -> int:
        """Send every row that is due; return how many were attempted."""
        async with self._pass:
            return await self._send_due(limit)

    async def _send_due(self, limit: int) -> int:
        now = self._clock.now()
        quiet = quiet_until(now, self._rules.tz, self._rules.quiet_start, self._rules.quiet_end)
        async with self._engine.begin() as conn:
            await _recover_stale_claims(conn, now)
            if quiet is not None:
                # Quiet hours: non-urgent rows wait for the morning (nothing is dropped).
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.status == "pending", outbox.c.urgent.is_(False),
                           outbox.c.next_attempt_at <= now)
                    .values(next_attempt_at=quiet)
                )
            rows = (
                await conn.execute(
                    select(outbox.c.id)
                    .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
                    .order_by(outbox.c.urgent.desc(), outbox.c.id)
                    .limit(limit)
                )
            ).all()
        for work in self._also:
            await work()  # e.g. the mass calls of pending broadcasts
        sent = 0
        for (row_id,) in rows:
            if await self._send_one(row_id):
                sent += 1
        return sent

    async def _send_one(self, row_id: int) -> bool:
        row = await self._claim(row_id)
        if row is None:
            return False
        async with self._engine.connect() as conn:
            open_window = await window_allows(conn, row.openid, self._clock.now())
        if open_window:
            await self._in_flight(row, "custom")
            try:
                await self._client.send_text(openid=row.openid, content=row.content)
            except WeChatAPIError as error:
                await self._attempt(row, "custom", error.errcode, error.errmsg)
                if error.kind != ErrorKind.UNDELIVERABLE:
                    await self._retry_or_fail(row, error)
                    return True
            else:
                await self._attempt(row, "custom", 0, "ok")
                await self._finish(row, status="sent", channel="custom")
                return True
        await self._by_template_or_escalate(row)
        return True

    async def _by_template_or_escalate(self, row: Any) -> None:
        if not self._rules.templates:
            await self._escalate(row, "why_window")
            return
        local = self._clock.now().astimezone(self._rules.tz)
        data = {"thing1": shorten(say(f"title_{row.kind}") if _has(f"title_{row.kind}")
                                  else say("title_default")),
                "thing2": shorten(row.content), "time3": local.strftime("%Y-%m-%d %H:%M")}
        await self._in_flight(row, "template")
        try:
            answer = await self._client.send_template(
                openid=row.openid, template_id=self._rules.template_id, data=data,
                client_msg_id=f"outbox-{row.id}")
        except WeChatAPIError as error:
            await self._attempt(row, "template", error.errcode, error.errmsg)
            if error.kind == ErrorKind.RETRY:
                await self._retry_or_fail(row, error)
            else:
                await self._escalate(row, _why(error.errcode))
            return
        await self._attempt(row, "template", 0, "ok")
        await self._finish(row, status="sent", channel="template",
                           wechat_msgid=int(answer.get("msgid") or 0) or None)

    async def _escalate(self, row: Any, why: str) -> None:
        """Ask the member's branch secretary to tell them in person (a to-do)."""
        async with self._engine.begin() as conn:
            if await escalate(conn, row=row, why=why, now=self._clock.now()):
                await _set(conn, row.id, status="escalated", channel="escalated")
            else:
                await _set(conn, row.id, status="undeliverable")
        self.wake()  # the to-do's own push is due now

    async def _retry_or_fail(self, row: Any, error: WeChatAPIError) -> None:
        attempts = row.attempts + 1
        async with self._engine.begin() as conn:
            if error.kind == ErrorKind.RETRY and attempts < MAX_ATTEMPTS:
                await _set(conn, row.id, status="pending", attempts=attempts,
                           last_errcode=error.errcode,
                           next_attempt_at=self._clock.now() + backoff(attempts))
            else:
                await _set(conn, row.id, status="failed", attempts=attempts,
                           last_errcode=error.errcode)
        log.info("outbox row %s: errcode %s", row.id, error.errcode)

    async def _in_flight(self, row: Any, channel: str) -> None:
        # Written before the call, so a process killed mid-call leaves a trace of it.
        async with self._engine.begin() as conn:
            await _set(conn, row.id, channel=channel)

    async def _claim(self, row_id: int) -> Any:
        now = self._clock.now()
        async with self._engine.begin() as conn:
            claimed = await conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id, outbox.c.status == "pending")
                .values(status="sending", next_attempt_at=now, channel=None)
            )
            if claimed.rowcount != 1:
                return None
            return (await conn.execute(select(outbox).where(outbox.c.id == row_id))).first()

    async def _attempt(self, row: Any, channel: str, errcode: int, errmsg: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(outbox_attempts).values(
                outbox_id=row.id, at=self._clock.now(), channel=channel, errcode=errcode,
                errmsg=errmsg[:200]))
            await _set(conn, row.id, last_errcode=errcode)

    async def _finish(self, row: Any, *, status: str, channel: str,
                      wechat_msgid: int | None = None) -> None:
        async with self._engine.begin() as conn:
            await _set(conn, row.id, status=status, channel=channel, attempts=row.attempts + 1,
                       sent_at=self._clock.now(), wechat_msgid=wechat_msgid)


async def _recover_stale_claims(conn: AsyncConnection, now: datetime) -> None:
    """Rows left "sending" by a dispatcher that died. One that died before calling WeChat is
    simply due again; one that died during a template call is retried with the same
    client_msg_id (WeChat drops the duplicate); one that died during a customer-service
    call may have been delivered, and that API has no idempotency key: it is marked
    `unknown` rather than risk sending it twice."""
    stale = (outbox.c.status == "sending") & (outbox.c.next_attempt_at < now - STALE_CLAIM)
    await conn.execute(update(outbox).where(stale, outbox.c.channel == "custom")
                       .values(status="unknown"))
    await conn.execute(update(outbox).where(stale).values(status="pending"))


async def _set(conn: AsyncConnection, row_id: int, **values: Any) -> None:
    await conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))


def _why(errcode: int) -> str:
    return {43004: "why_unfollowed", 43101: "why_blocked"}.get(errcode, "why_failed")


def _has(key: str) -> bool:
    return key in texts("bangfu_bot.notify")


say = speaker("bangfu_bot.notify")


async def escalate(conn: AsyncConnection, *, row: Any, why: str, now: datetime) -> bool:
    """Give the recipient's branch secretary a to-do to pass the message on; False when
    nobody can (no binding, no secretary, or it already was a to-do for an official)."""
    from bangfu_bot.members.service import person_for_openid, secretaries_of
    from bangfu_bot.todos.service import add_todo

    if row.kind == "todo":
        return False  # an official's to-do stays in 待办; escalating it would loop
    person = await person_for_openid(conn, row.openid)
    if person is None:
        return False
    secretaries = [s for s in await secretaries_of(conn, person.branch_id) if s != person.id]
    if not secretaries:
        return False
    text = say("escalate", name=person.name, content=row.content) + say("escalate_reason",
                                                                        why=say(why))
    for secretary_id in secretaries:
        await add_todo(conn, assignee_id=secretary_id, kind="tell_member", text=text, now=now,
                       subject_id=person.id, key=f"escalate:{row.id}:{secretary_id}")
    return True


async def template_finished(conn: AsyncConnection, *, msgid: int, status: str,
                            now: datetime) -> None:
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
    """How many outbox rows are in each status."""
    rows = await conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    return {status: int(count) for status, count in rows}
