"""What each domain's `chat.py` registers, and the one registry the router reads.

A domain declares its side of the chat as data: the command words it answers (by the ids
`conversations/commands.toml` maps people's words to), the events and QR scenes it handles,
the flow it opens for each kind of to-do, the final actions and previews its flows name, and
the guards that may refuse a flow before it begins. The edge (`bangfu_bot.chats`) gathers
every domain's `Chat` into a `Registry`; the router looks words, events and to-dos up there
and imports no domain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.conversation import store
from bangfu_bot.conversation.bot import Inbound
from bangfu_bot.conversation.engine import ActionResult, Checked, Previewer
from bangfu_bot.members.service import Person

if TYPE_CHECKING:
    from bangfu_bot.conversation.router import ChatBot


@dataclass
class Context:
    """Everything about one push that words, to-dos and actions need."""

    conn: AsyncConnection
    openid: str
    person: Person | None
    dialogue: store.Dialogue
    now: datetime
    message: Inbound
    tz: ZoneInfo
    bot: ChatBot = field(repr=False)

    @property
    def today(self) -> date:
        """The county's date now."""
        return self.now.astimezone(self.tz).date()

    def begin(self, flow: str, context: dict[str, Any] | None = None) -> list[str]:
        """Put any flow under way aside and begin `flow` with `context`."""
        return self.bot.begin(self, flow, context or {})

    def busy(self) -> list[str] | None:
        """If a flow is under way, the answer that says so (a word that begins another flow
        must not drop it); else None."""
        return self.bot.busy(self)

    async def act(self, name: str, act: Callable[[], Awaitable[ActionResult]]) -> ActionResult:
        """Run an act that changes something, rolled back whole if refused."""
        return await self.bot.act(self, name, act)


Answer = list[str]
Word = Callable[[Context], Awaitable[Answer]]
Event = Callable[[Context], Awaitable[Answer | None]]
Scene = Callable[[Context, str], Awaitable[Answer]]
TodoOpener = Callable[[Context, Any], Awaitable[Answer]]
Action = Callable[[Context, dict[str, Any], dict[str, Any]], Awaitable[ActionResult]]
Guard = Callable[[Context], Awaitable[str | None]]
# A step's check (flow files: `check = "..."`): the step's id, the answers so far and the
# flow's context → a refusal, or what the answer means.
StepCheck = Callable[[Context, str, dict[str, Any], dict[str, Any]], Awaitable[Checked]]
# Whether a word is worth offering this person now (帮助 leaves it out otherwise).
Offer = Callable[[Context], Awaitable[bool]]


@dataclass(frozen=True)
class Chat:
    """One domain's side of the chat."""

    words: Mapping[str, Word] = field(default_factory=dict)
    events: Mapping[str, Event] = field(default_factory=dict)
    scenes: Mapping[str, Scene] = field(default_factory=dict)
    todos: Mapping[str, TodoOpener] = field(default_factory=dict)
    actions: Mapping[str, Action] = field(default_factory=dict)
    previews: Mapping[str, Previewer] = field(default_factory=dict)
    guards: Mapping[str, Guard] = field(default_factory=dict)
    checks: Mapping[str, StepCheck] = field(default_factory=dict)
    # By command id (commands.toml): 帮助 shows the word only while its offer holds.
    offers: Mapping[str, Offer] = field(default_factory=dict)


class RegistryConflict(ValueError):
    """Two domains claimed the same word, event, to-do kind, action, preview, guard or
    check."""


@dataclass(frozen=True)
class Registry:
    """Every domain's chat, merged; a key claimed twice is a programming error."""

    words: Mapping[str, Word]
    events: Mapping[str, Event]
    scenes: Mapping[str, Scene]
    todos: Mapping[str, TodoOpener]
    actions: Mapping[str, Action]
    previews: Mapping[str, Previewer]
    guards: Mapping[str, Guard]
    checks: Mapping[str, StepCheck]
    offers: Mapping[str, Offer] = field(default_factory=dict)

    @classmethod
    def of(cls, chats: Iterable[Chat]) -> Registry:
        """Merge the domains' chats."""
        chats = list(chats)
        merged: dict[str, dict[str, Any]] = {}
        for part in (
            "words",
            "events",
            "scenes",
            "todos",
            "actions",
            "previews",
            "guards",
            "checks",
            "offers",
        ):
            table: dict[str, Any] = {}
            for chat in chats:
                for key, value in getattr(chat, part).items():
                    if key in table:
                        raise RegistryConflict(f"{part[:-1]} {key!r} is registered twice")
                    table[key] = value
            merged[part] = table
        return cls(**merged)
