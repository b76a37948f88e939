"""The webhook: verify → cap → decrypt → parse → dedupe → hand to the inbox → reply.

WeChat gives 5 seconds and shows the member 「该公众号暂时无法提供服务」 on a timeout or a
malformed answer, so every path here ends in a valid answer well inside the reply budget:
the passive reply, or `success` with the answer following as a customer-service message.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from wechatpy.replies import TextReply

from bangfu_bot.clock import Clock
from bangfu_bot.metrics import Metrics
from bangfu_bot.wechat.crypto import Opened, PushRejected, PushVerifier, seal
from bangfu_bot.wechat.inbound import Inbound, read_inbound
from bangfu_bot.wechat.inbox import Inbox, Outcome

log = logging.getLogger(__name__)

SUCCESS = "success"


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
    ) -> None:
        self._verifier = verifier
        self._inbox = inbox
        self._clock = clock
        self._metrics = metrics
        self._budget = reply_budget_s
        self._max_body = max_body_bytes

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
            message = read_inbound(opened.xml, self._clock, opened.fields)
        except PushRejected as rejected:
            return self._refuse(request, rejected)
        try:
            answer, channel = await self._answer(message, started)
        except Exception:  # noqa: BLE001 - a 5xx would show the member an error page
            log.exception("push %s: unexpected failure, answering success",
                          message.dedupe_key[:24])
            return web.Response(text=SUCCESS)
        self._metrics.replied(channel, time.monotonic() - started)
        return web.Response(text=self._render(opened, message, answer), content_type="text/xml"
                            if answer else "text/plain")

    async def _read_capped(self, request: web.Request) -> bytes:
        declared = request.content_length
        if declared is not None and declared > self._max_body:
            raise PushRejected(413, f"body of {declared} bytes over the {self._max_body} cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(16384):
            size += len(chunk)
            if size > self._max_body:
                raise PushRejected(413, f"body over the {self._max_body} byte cap")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _answer(self, message: Inbound, started: float) -> tuple[str | None, str]:
        # Overload: answer `success` at once rather than let WeChat time out, and answer
        # the member by customer-service message once the work is done.
        if self._inbox.full():
            await self._inbox.shed(message)  # memory stays bounded: it waits on disk
            self._metrics.shed.labels(reason="full").inc()
            return None, "shed"
        future = self._inbox.submit(message)
        remaining = self._budget - (time.monotonic() - started)
        if not future.done() and self._inbox.expected_wait_s() > remaining:
            await self._inbox.stop_waiting(message)
            self._metrics.shed.labels(reason="slow").inc()
            return None, "late"
        try:
            async with asyncio.timeout(max(remaining, 0)):
                outcome: Outcome = await asyncio.shield(future)
        except TimeoutError:
            await self._inbox.stop_waiting(message)
            log.info("push %s: reply budget spent, answering later", message.dedupe_key[:24])
            return None, "late"
        if outcome.status == "unavailable":
            await self._inbox.stop_waiting(message)
            return None, "late"
        if outcome.status == "failed":
            return outcome.reply, "apology"
        return outcome.reply, "passive"

    def _render(self, opened: Opened, message: Inbound, answer: str | None) -> str:
        if not answer:
            return SUCCESS
        reply = TextReply(source=message.account, target=message.openid, content=answer)
        reply_xml = reply.render()
        if opened.crypto is None:
            return reply_xml
        return seal(opened.crypto, reply_xml, self._clock)

    def _refuse(self, request: web.Request, rejected: PushRejected) -> web.Response:
        # Operators get one line naming the cause; the sender gets nothing echoed back.
        log.warning("refused %s %s from %s: %s", request.method, request.path,
                    request.remote, rejected.reason)
        self._metrics.rejected.labels(status=str(rejected.status)).inc()
        return web.Response(status=rejected.status, text="")
