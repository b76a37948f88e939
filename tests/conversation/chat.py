"""A scripted chat: send a line as a member would, read what the bot answered."""

from __future__ import annotations

import asyncio
from typing import Any

from bangfu_bot.wechat.fake import PushDriver


async def answered_later(bot: Any, openid: str, before: int, within_s: float = 30) -> str:
    """The customer-service message that brings an answer the bot acknowledged with
    `success` (its reply budget spent on a loaded machine): the first one sent to the
    user after they had `before` of them; "" when none came within `within_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        await bot.flush_outbox()
        sent = bot.api.sent_texts(openid)
        if len(sent) > before:
            return str(sent[before])
        await asyncio.sleep(0.05)
    return ""


class Chat:
    """One WeChat user talking to the bot through the fake WeChat, over HTTP."""

    def __init__(self, bot: Any, openid: str, mode: str = "safe") -> None:
        self.bot = bot
        self.openid = openid
        self.driver: PushDriver = bot.driver(mode)
        self.transcript: list[str] = []

    async def send(self, text: str) -> str:
        """Type a line; return the answer the member reads (asserting WeChat accepted it):
        the passive reply, or, when the bot spent its reply budget (a loaded machine) and
        acknowledged with `success`, the customer-service message that brings it later."""
        before = len(self.pushed())
        delivery = await self.driver.text(self.openid, text)
        if delivery.body == "success" and not delivery.shown_error:
            late = await self._answered_later(before)
            self.transcript.extend([f"> {text}", late])
            return late
        return self._took(f"> {text}", delivery)

    async def _answered_later(self, before: int) -> str:
        return await answered_later(self.bot, self.openid, before)

    async def voice(self, recognition: str) -> str:
        """Speak; WeChat's transcript (possibly empty) arrives as Recognition."""
        return self._took(
            f"> (语音) {recognition}", await self.driver.voice(self.openid, recognition)
        )

    async def photo(self, media_id: str = "media-photo-1") -> str:
        """Send a photo."""
        return self._took("> (照片)", await self.driver.image(self.openid, media_id))

    async def event(self, event: str, key: str | None = None) -> str:
        """Cause an event (follow, menu click, QR scan)."""
        return self._took(
            f"> [{event} {key or ''}]", await self.driver.event(self.openid, event, key)
        )

    def pushed(self) -> list[str]:
        """Customer-service messages WeChat delivered to this user so far."""
        return self.bot.api.sent_texts(self.openid)

    def _took(self, line: str, delivery: Any) -> str:
        assert not delivery.shown_error, f"WeChat would show an error: {delivery.statuses}"
        answer = delivery.text or ""
        self.transcript.extend([line, answer])
        return answer
