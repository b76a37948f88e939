"""The bot: what to answer a push. The webhook hands every new push here, in a transaction.

The chat bot in conversation/router.py implements it with the flows in conversations/;
tests plug in small bots of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.texts import speaker
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


say = speaker("bangfu_bot")
