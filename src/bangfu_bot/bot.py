"""The bot: what to answer a push. The webhook hands every new push here, in a transaction.

The conversation engine (conversations/*.toml) plugs in behind this protocol. Until then the
foundation answers follows, help requests and unknown types in plain Chinese.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.texts import texts
from bangfu_bot.wechat.inbound import Inbound

# Events that are receipts or navigation: WeChat expects no answer to them.
SILENT_EVENTS = {
    "unsubscribe",
    "location",
    "view",
    "templatesendjobfinish",
    "masssendjobfinish",
    "subscribe_msg_popup_event",
    "subscribe_msg_change_event",
    "subscribe_msg_sent_event",
}


class Bot(Protocol):
    """Decides the answer to one push; may write to the database through `conn`."""

    async def handle(self, conn: AsyncConnection, message: Inbound, now: datetime) -> str | None:
        """Return the text to answer with, or None for no answer."""
        ...


def say(key: str) -> str:
    """A text of the platform edge."""
    return texts("bangfu_bot")[key]


class FoundationBot:
    """Answers follows, 帮助, unknown types and non-text messages."""

    async def handle(self, conn: AsyncConnection, message: Inbound, now: datetime) -> str | None:
        """Return the text to answer with, or None for no answer."""
        if message.is_event:
            return self._event(message)
        if not message.known:
            return say("unknown_type")
        if message.msg_type != "text" and not message.content:
            return say("text_only")
        if message.content.strip() in {"帮助", "菜单", "?", "？"}:
            return say("help")
        return say("not_understood")

    def _event(self, message: Inbound) -> str | None:
        if message.event in {"subscribe", "subscribe_scan"}:
            return say("welcome")
        if message.event in SILENT_EVENTS:
            return None
        if message.event in {"click", "scan"}:
            return say("help")
        # An event we do not know was still caused by a person: answer, never fail.
        return say("unknown_type")
