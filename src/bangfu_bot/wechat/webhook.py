"""The webhook: verify → cap → decrypt → parse → dedupe → hand to the inbox → reply.

WeChat gives 5 seconds and shows the member 「该公众号暂时无法提供服务」 on a timeout or a
malformed answer, so every path here ends in a valid answer well inside the reply budget:
the passive reply, or `success` with the answer following as a customer-service message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from aiohttp import web

from bangfu_bot.clock import Clock
from bangfu_bot.conversation.bot import Inbound
from bangfu_bot.metrics import Metrics
from bangfu_bot.wechat.crypto import Opened, PushRejected, PushVerifier, seal
from bangfu_bot.wechat.inbound import read_inbound
from bangfu_bot.wechat.inbox import Inbox, Outcome, PushState
from bangfu_bot.wechat.replay import ReplayGuard
from bangfu_bot.wechat.spool import JournalUnavailable

log = logging.getLogger(__name__)

SUCCESS = "success"
# WeChat gives up at 5 s. When a push cannot be journaled, its answer is waited for up to
# here rather than acknowledged with a `success` nothing would stand behind.
HARD_DEADLINE_S = 4.5


class Webhook:
    """aiohttp handlers for /wechat."""

    def __init__(
        self,
        *,
        verifier: PushVerifier,
        inbox: Inbox,
        clock: Clock,
        metrics: Metrics,
        reply_budget_s: float,
        max_body_bytes: int,
        replay: ReplayGuard | None = None,
    ) -> None:
        self._replay = replay
        self._verifier = verifier
        self._inbox = inbox
        self._clock = clock
        self._metrics = metrics
        self._budget = reply_budget_s
        self._max_body = max_body_bytes
        self._budgets = Budgets()
        self._journal_trouble: str | None = None

    async def url_check(self, request: web.Request) -> web.Response:
        """GET: the platform's URL check; echo `echostr` when the signature is right."""
        try:
            self._verifier.check_query(request.query)
        except PushRejected as rejected:
            return self._refuse(request, rejected)
        return web.Response(text=request.query.get("echostr", ""))

    async def push(self, request: web.Request) -> web.Response:
        """POST: one message or event."""
        started = time.monotonic()
        try:
            self._verifier.check_query(request.query)
            body = await self._read_capped(request)
            opened = self._verifier.open(request.query, body)
            if opened.mode == "plain" and self._replay is not None:
                await self._replay.check(request.query["signature"], body)
            message = read_inbound(opened.xml, self._clock, opened.fields)
        except PushRejected as rejected:
            return self._refuse(request, rejected)
        try:
            answer, channel = await self._answer(message, started)
        except Exception:
            log.exception("push %s: unexpected failure, answering success", message.dedupe_key[:24])
            return web.Response(text=SUCCESS)
        self._metrics.replied(channel, time.monotonic() - started)
        if channel == "unheld":
            # Neither committed nor journaled: no `success`, so WeChat tries again.
            return web.Response(status=503, text="")
        return web.Response(
            text=self._render(opened, message, answer),
            content_type="text/xml" if answer else "text/plain",
        )

    async def _read_capped(self, request: web.Request) -> bytes:
        declared = request.content_length
        if declared is not None and declared > self._max_body:
            raise PushRejected(413, f"body of {declared} bytes over the {self._max_body} cap")
        try:
            # aiohttp stops reading at the app's client_max_size (a little over ours), so a
            # chunked body without a length cannot fill memory either.
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PushRejected(413, f"body over the {self._max_body} byte cap") from None
        if len(body) > self._max_body:
            raise PushRejected(413, f"body of {len(body)} bytes over the {self._max_body} cap")
        return body

    async def _answer(self, message: Inbound, started: float) -> tuple[str | None, str]:
        # Overload: answer `success` at once rather than let WeChat time out, and answer
        # the member by customer-service message once the work is done.
        if self._inbox.full():
            try:
                await self._inbox.shed(message)  # memory stays bounded: it waits on disk
            except JournalUnavailable as error:
                self._journal_failed(error)
                return None, "unheld"
            self._metrics.shed.labels(reason="full").inc()
            return None, "shed"
        future = self._inbox.submit(message)
        remaining = self._budget - (time.monotonic() - started)
        if not future.done() and self._inbox.expected_wait_s() > remaining:
            self._metrics.shed.labels(reason="slow").inc()
            return await self._later(message, future, started)
        if not await self._budgets.wait(future, remaining):
            log.info("push %s: reply budget spent, answering later", message.dedupe_key[:24])
            return await self._later(message, future, started)
        outcome: Outcome = future.result()
        if outcome.status is PushState.UNAVAILABLE:
            return await self._later(message, future, started)
        return self._answered(outcome)

    @staticmethod
    def _answered(outcome: Outcome) -> tuple[str | None, str]:
        if outcome.status is PushState.FAILED:
            return outcome.reply, "apology"
        return outcome.reply, "passive"

    async def _later(
        self, message: Inbound, future: asyncio.Future[Outcome], started: float
    ) -> tuple[str | None, str]:
        """Answer `success` now and the member later, if the push is held on disk; else
        wait for its commit up to the hard deadline, and without it answer no `success`."""
        try:
            await self._inbox.stop_waiting(message)
        except JournalUnavailable as error:
            self._journal_failed(error)
            if future.done() and future.result().status is not PushState.UNAVAILABLE:
                return None, "late"  # committed meanwhile; its answer left as a late reply
            self._inbox.not_late(message)
            left = HARD_DEADLINE_S - (time.monotonic() - started)
            if (
                await self._budgets.wait(future, left)
                and future.result().status is not PushState.UNAVAILABLE
            ):
                return self._answered(future.result())
            return None, "unheld"
        if self._journal_trouble is not None:
            log.warning("journal writable again: pushes are acknowledged as before")
            self._journal_trouble = None
        return None, "late"

    def _journal_failed(self, error: JournalUnavailable) -> None:
        self._metrics.shed.labels(reason="unheld").inc()
        if self._journal_trouble is None:
            # One line when it starts (the path and the cause), not one per push.
            log.error(
                "%s: pushes that cannot be answered in time get no `success` and "
                "WeChat retries them",
                error,
            )
        self._journal_trouble = str(error)

    def _render(self, opened: Opened, message: Inbound, answer: str | None) -> str:
        if not answer:
            return SUCCESS
        reply_xml = text_reply_xml(
            source=message.account,
            target=message.openid,
            content=answer,
            created=int(self._clock.now().timestamp()),
        )
        if opened.crypto is None:
            return reply_xml
        return seal(opened.crypto, reply_xml, self._clock)

    def _refuse(self, request: web.Request, rejected: PushRejected) -> web.Response:
        # Operators get one line naming the cause; the sender gets nothing echoed back.
        log.warning(
            "refused %s %s from %s: %s",
            request.method,
            request.path,
            request.remote,
            rejected.reason,
        )
        self._metrics.rejected.labels(status=str(rejected.status)).inc()
        return web.Response(status=rejected.status, text="")


def text_reply_xml(*, source: str, target: str, content: str, created: int) -> str:
    """A passive text reply. wechatpy's TextReply puts the text into CDATA as it is, so an
    answer that repeats a member's "]]>" would end the section early and WeChat would show
    the member an error; here every "]]>" is split across two sections."""
    return (
        "<xml><ToUserName><![CDATA[" + _cdata(target) + "]]></ToUserName>"
        "<FromUserName><![CDATA[" + _cdata(source) + "]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[" + _cdata(content) + "]]></Content></xml>"
    )


def _cdata(text: str) -> str:
    return text.replace("]]>", "]]]]><![CDATA[>")


class Budgets:
    """Waits on answers for at most the reply budget, with one timer for all pushes.

    A timer per push (asyncio.timeout, wait_for) costs a heap entry, a cancellation and a
    shield for every message. Every push has the same budget, so deadlines come nearly in
    arrival order: one ticker wakes the waiters at the head of a queue whose deadline has
    passed. A deadline may be met up to one tick late, far inside WeChat's 5 seconds.
    """

    def __init__(self, tick_s: float = 0.02) -> None:
        self._tick_s = tick_s
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def wait(self, answer: asyncio.Future[Outcome], remaining_s: float) -> bool:
        """Wait for `answer` at most `remaining_s`; True if it came. `answer` is never
        cancelled, not even when the request is (duplicates share it)."""
        if answer.done():
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def wake(_: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        answer.add_done_callback(wake)
        self._waiting.append((loop.time() + max(remaining_s, 0.0), waiter))
        if self._timer is None:
            self._timer = loop.call_later(self._tick_s, self._expire, loop)
        try:
            await waiter
        finally:
            answer.remove_done_callback(wake)
        return answer.done()

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        waiting = self._waiting
        while waiting and (waiting[0][1].done() or waiting[0][0] <= now):
            _, waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
        self._timer = loop.call_later(self._tick_s, self._expire, loop) if waiting else None
