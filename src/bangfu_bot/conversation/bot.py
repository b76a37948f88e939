"""The bot: what to answer a push. The webhook hands every new push here, in a transaction.

The chat bot in conversation/router.py implements it with the flows in conversations/;
tests plug in small bots of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.texts import speaker

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


@dataclass(frozen=True)
class Inbound:
    """One message or event pushed by the platform, as the bot reads it."""

    dedupe_key: str
    openid: str
    account: str
    msg_type: str
    event: str | None
    event_key: str
    content: str
    media_id: str
    created_at: datetime
    xml: str
    known: bool
    fields: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_event(self) -> bool:
        """Whether this is an event (follow, click, delivery receipt...) rather than a message."""
        return self.msg_type == "event"


class Bot(Protocol):
    """Decides the answer to one push; may write to the database through `conn`."""

    async def handle(self, conn: AsyncConnection, message: Inbound, now: datetime) -> str | None:
        """Return the text to answer with, or None for no answer."""
        ...


say = speaker("bangfu_bot")
