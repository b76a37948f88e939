"""What each sandbox persona's phone shows, and how the page talks to the bot.

Everything goes through the real webhook: the page's actions become pushes signed (and in
safe mode encrypted) by the fake WeChat's push driver and POSTed to the bot's own /wechat.
What the bot sends back out (customer-service, template and mass messages) is read from the
fake WeChat API's record of calls, so the chat shows exactly what a member's phone would;
what it could not send, and what waits for the morning, is read from the outbox.
"""

from __future__ import annotations

import asyncio
import itertools
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bangfu_bot.clock import Clock
from bangfu_bot.conversation.models import conversations
from bangfu_bot.members.models import bindings, people
from bangfu_bot.notify.models import outbox
from bangfu_bot.sandbox.personas import OPENID_PREFIX
from bangfu_bot.texts import speaker
from bangfu_bot.wechat.fake_api import FakeWeChatAPI
from bangfu_bot.wechat.fake_push import PLATFORM_ERROR, Delivery, PushDriver
from bangfu_bot.wechat.models import wechat_users

MODES = ("safe", "plain")
KINDS = ("text", "click", "photo", "voice")
# A chat keeps its latest entries; a training day never gets near this.
KEEP = 1000
MESSAGE_ENDPOINTS = (
    "message/custom/send",
    "message/template/send",
    "message/mass/sendall",
    "message/mass/send",
)
# Outbox rows that will never reach the phone, and why, as a trainer would say it.
MISSED = ("undeliverable", "escalated", "failed", "unknown")
# A binding walk never takes more turns than 取消, 绑定, name, ID tail, 1 and a retry.
BIND_TURNS = 8


say = speaker("bangfu_bot.sandbox")


def local_date(instant: datetime, tz: ZoneInfo) -> str:
    """2026年11月10日 星期二."""
    day = instant.astimezone(tz)
    return say(
        "date", year=day.year, month=day.month, day=day.day, weekday=say("weekdays")[day.weekday()]
    )


def stamp(instant: datetime, tz: ZoneInfo) -> str:
    """11月10日 10:00."""
    moment = instant.astimezone(tz)
    return say("stamp", month=moment.month, day=moment.day, hour=moment.hour, minute=moment.minute)


@dataclass(frozen=True)
class Entry:
    """One bubble in a persona's chat."""

    seq: int
    side: str  # me | bot | push | note
    kind: str  # text, click, photo, voice, follow | reply, success, error | cs, template...
    text: str
    at: str
    label: str = ""

    def json(self) -> dict[str, Any]:
        """The JSON the page reads."""
        return {
            "seq": self.seq,
            "side": self.side,
            "kind": self.kind,
            "text": self.text,
            "at": self.at,
            "label": self.label,
        }


class Transcripts:
    """Every persona's chat, in the order things happened.

    While a persona's push is under way, messages pushed to them are held back and shown after
    the passive reply, as the phone would show them.
    """

    def __init__(self) -> None:
        self._seq = itertools.count(1)
        self._chats: dict[str, list[Entry]] = {}
        self._held: dict[str, list[tuple[str, str, str, str, str]]] = {}

    def add(self, openid: str, side: str, kind: str, text: str, at: str, label: str = "") -> None:
        """Append an entry (or hold it while the persona's push is under way)."""
        if openid in self._held:
            self._held[openid].append((side, kind, text, at, label))
            return
        chat = self._chats.setdefault(openid, [])
        chat.append(Entry(next(self._seq), side, kind, text, at, label))
        del chat[:-KEEP]

    def after(self, openid: str, seq: int) -> list[Entry]:
        """The persona's entries after `seq`."""
        return [entry for entry in self._chats.get(openid, []) if entry.seq > seq]

    def openids(self) -> list[str]:
        """Every persona with a chat."""
        return list(self._chats)

    def hold(self, openid: str) -> None:
        """Hold pushes to this persona until `release`."""
        self._held.setdefault(openid, [])

    def release(self, openid: str) -> None:
        """Show the held pushes."""
        for held in self._held.pop(openid, []):
            self.add(openid, *held)

    def direct(self, openid: str, side: str, kind: str, text: str, at: str) -> None:
        """Append at once, even while held (the persona's own message and its reply)."""
        chat = self._chats.setdefault(openid, [])
        chat.append(Entry(next(self._seq), side, kind, text, at))
        del chat[:-KEEP]


class PushFeed:
    """Reads what the fake WeChat delivered, call by call, into the transcripts."""

    def __init__(self, fake: FakeWeChatAPI, tz: ZoneInfo) -> None:
        self.fake = fake
        self.tz = tz
        self._cursor = 0
        self._mass_jobs = 0

    def collect(self, transcripts: Transcripts) -> None:
        """Add every message call made since the last look."""
        calls = self.fake.calls[self._cursor :]
        self._cursor += len(calls)
        for call in calls:
            if call.endpoint not in MESSAGE_ENDPOINTS:
                continue
            at = stamp(call.at, self.tz)
            if call.endpoint.startswith("message/mass/"):
                if call.errcode == 0:
                    self._mass(transcripts, at)
                continue
            openid = call.payload.get("touser")
            if not isinstance(openid, str):
                continue
            if call.errcode != 0:
                continue  # what never arrives is read from the outbox (MissedFeed)
            if call.endpoint == "message/template/send":
                transcripts.add(
                    openid,
                    "push",
                    "template",
                    _template_text(self.fake, call.payload),
                    at,
                    say("push_template"),
                )
            else:
                transcripts.add(
                    openid, "push", "cs", _custom_text(call.payload), at, say("push_cs")
                )

    def _mass(self, transcripts: Transcripts, at: str) -> None:
        # Accepted mass calls and the fake's jobs correspond one to one, in order.
        jobs = self.fake.mass_jobs()
        if self._mass_jobs >= len(jobs):
            return
        job = jobs[self._mass_jobs]
        self._mass_jobs += 1
        for openid in job.delivered:
            transcripts.add(openid, "push", "mass", job.content, at, say("push_mass"))


class MissedFeed:
    """Shows the messages the bot meant for a persona that will not reach their phone.

    The dispatcher decides that itself (a closed 48-hour window is known without asking
    WeChat), so the outbox, not the fake's record of calls, tells what was missed.
    """

    def __init__(self) -> None:
        self._shown: set[int] = set()

    async def collect(self, engine: AsyncEngine, transcripts: Transcripts, tz: ZoneInfo) -> None:
        """Add every sandbox outbox row that ended without reaching the phone."""
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        outbox.c.id,
                        outbox.c.openid,
                        outbox.c.content,
                        outbox.c.status,
                        outbox.c.created_at,
                    )
                    .where(outbox.c.status.in_(MISSED), outbox.c.openid.like(f"{OPENID_PREFIX}%"))
                    .order_by(outbox.c.id)
                )
            ).all()
        for row in rows:
            if row.id in self._shown:
                continue
            self._shown.add(row.id)
            text = say("undelivered", why=say(f"why_{row.status}"), text=row.content)
            transcripts.add(
                row.openid,
                "push",
                "undelivered",
                text,
                stamp(row.created_at, tz),
                say("push_missed"),
            )


async def waiting(
    engine: AsyncEngine, openid: str, now: datetime, tz: ZoneInfo
) -> list[dict[str, str]]:
    """Messages queued for the persona that go out later (quiet hours, a retry)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox.c.content, outbox.c.next_attempt_at)
                .where(
                    outbox.c.openid == openid,
                    outbox.c.status == "pending",
                    outbox.c.next_attempt_at > now,
                )
                .order_by(outbox.c.next_attempt_at, outbox.c.id)
            )
        ).all()
    return [
        {"text": row.content, "at": say("waiting", at=stamp(row.next_attempt_at, tz))}
        for row in rows
    ]


def _custom_text(payload: dict[str, Any]) -> str:
    message = payload.get(str(payload.get("msgtype")))
    if payload.get("msgtype") == "text" and isinstance(message, dict):
        return str(message.get("content", ""))
    return say("push_other", type=str(payload.get("msgtype")))


def _template_text(fake: FakeWeChatAPI, payload: dict[str, Any]) -> str:
    """A template as the phone shows it: its title, then 「label：value」 a line."""
    data = payload.get("data")
    if not isinstance(data, dict):
        return ""
    values = {
        str(key): str(entry.get("value", ""))
        for key, entry in data.items()
        if isinstance(entry, dict)
    }
    return "\n".join(
        fake.shown_template({"template_id": payload.get("template_id"), "data": values})
    )


@dataclass(frozen=True)
class Action:
    """What the persona does: type, tap a menu button, send a photo or a voice message."""

    kind: str
    text: str = ""
    key: str = ""


class Sandbox:
    """The sandbox page's side of the conversation with the bot."""

    def __init__(self, *, services: Any, session: aiohttp.ClientSession) -> None:
        self.services = services
        self.session = session
        self.transcripts = Transcripts()
        self.seeding = asyncio.Lock()
        # One clock move at a time: two taps of 「+1 天」 make two days, each with its jobs.
        self.moving = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._photos = itertools.count(1)
        self._feed: PushFeed | None = None
        self._missed = MissedFeed()
        self.menu = load_menu(Path(services.settings.conversations_dir) / "menu.toml")

    @property
    def tz(self) -> ZoneInfo:
        """The county's time zone."""
        return ZoneInfo(self.services.settings.timezone)

    @property
    def clock(self) -> Clock:
        """The sandbox clock (shared with the bot and the fake WeChat)."""
        return self.services.clock

    @property
    def engine(self) -> AsyncEngine:
        """The bot's database."""
        return self.services.engine

    @property
    def can_encrypt(self) -> bool:
        """Whether safe mode is possible (an EncodingAESKey is configured)."""
        return bool(self.services.settings.wechat_aes_key)

    async def sync(self) -> None:
        """Bring in what was pushed, or failed to be, since the last look."""
        fake = self.services.fake
        if fake is not None:
            if self._feed is None or self._feed.fake is not fake:
                self._feed = PushFeed(fake, self.tz)
            self._feed.collect(self.transcripts)
        await self._missed.collect(self.engine, self.transcripts, self.tz)

    async def waiting(self, openid: str) -> list[dict[str, str]]:
        """What is queued for the persona and goes out later."""
        return await waiting(self.engine, openid, self.clock.now(), self.tz)

    def note_everywhere(self, text: str) -> None:
        """A line across every chat (the clock moved)."""
        for openid in self.transcripts.openids():
            self.transcripts.add(openid, "note", "clock", text, stamp(self.clock.now(), self.tz))

    def driver(self, url: str, mode: str) -> PushDriver:
        """A push driver to the bot's own webhook, signing like WeChat."""
        settings = self.services.settings
        mode = mode if mode in MODES and self.can_encrypt else "plain"
        return PushDriver(
            url=url,
            token=settings.wechat_token,
            appid=settings.wechat_appid,
            aes_key=settings.wechat_aes_key,
            clock=self.clock,
            session=self.session,
            mode=mode,
            api=self.services.fake,
        )

    @asynccontextmanager
    async def _turn(self, openid: str) -> AsyncIterator[None]:
        # One persona's pushes go one after another, as from one phone.
        lock = self._locks.setdefault(openid, asyncio.Lock())
        async with lock:
            await self.sync()
            yield

    async def act(self, *, url: str, openid: str, action: Action, mode: str) -> None:
        """Do what the persona did, first following the account if they never have."""
        driver = self.driver(url, mode)
        async with self._turn(openid):
            await self._follow_once(driver, openid)
            await self._push(driver, openid, action)

    async def bind(self, *, url: str, openid: str, person_id: int, mode: str) -> None:
        """Walk the real 绑定 dialogue for the persona: name, last six ID characters, 1."""
        driver = self.driver(url, mode)
        async with self._turn(openid):
            await self._follow_once(driver, openid)
            person = await self._person(person_id)
            last = ""
            for _ in range(BIND_TURNS):
                bound = await self._bound_name(openid)
                if bound is not None:
                    if not last:
                        self._note(
                            openid,
                            say("already_bound", name=bound)
                            if bound == person["name"]
                            else say("bound_to_other", name=bound),
                        )
                    return
                text = await self._next_bind_answer(openid, person)
                if text is None or (text == "绑定" and last == "绑定"):
                    break
                await self._push(driver, openid, Action("text", text))
                last = text
            self._note(openid, say("bind_stopped"))

    async def _next_bind_answer(self, openid: str, person: dict[str, str]) -> str | None:
        """What a person who wants to bind types next, given where the dialogue stands."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        conversations.c.flow, conversations.c.status, conversations.c.state
                    ).where(conversations.c.openid == openid)
                )
            ).first()
        if row is None or row.status != "active":
            return "绑定"
        if row.flow != "bind":
            return "取消"
        step = ((row.state or {}).get("current") or {}).get("step")
        return {
            "name": person["name"],
            "id_tail": person["id_tail"],
            "@summary": "1",
            "@resume": "1",
        }.get(str(step))

    async def _person(self, person_id: int) -> dict[str, str]:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(people.c.name, people.c.id_number).where(people.c.id == person_id)
                )
            ).one()
        return {"name": row.name, "id_tail": row.id_number[-6:]}

    async def _bound_name(self, openid: str) -> str | None:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    select(people.c.name)
                    .select_from(bindings.join(people, people.c.id == bindings.c.person_id))
                    .where(bindings.c.openid == openid, bindings.c.unbound_at.is_(None))
                )
            ).scalar()

    async def _follow_once(self, driver: PushDriver, openid: str) -> None:
        # A persona who never chatted follows first, so the welcome shows as on a phone.
        async with self.engine.connect() as conn:
            known = (
                await conn.execute(
                    select(wechat_users.c.openid).where(wechat_users.c.openid == openid)
                )
            ).first()
        if known is None:
            await self._push(driver, openid, Action("follow"))

    async def _push(self, driver: PushDriver, openid: str, action: Action) -> None:
        shown, send = self._what(driver, openid, action)
        self.transcripts.direct(openid, "me", action.kind, shown, self._now())
        # Whatever is pushed to the persona meanwhile shows under the passive reply.
        self.transcripts.hold(openid)
        try:
            delivery = await send()
            self._show_reply(openid, delivery)
        finally:
            await self.sync()
            self.transcripts.release(openid)

    def _what(
        self, driver: PushDriver, openid: str, action: Action
    ) -> tuple[str, Callable[[], Awaitable[Delivery]]]:
        if action.kind == "follow":
            return say("me_follow"), lambda: driver.event(openid, "subscribe", "")
        if action.kind == "click":
            name = self.menu.get(action.key, action.key)
            return say("me_click", name=name), lambda: driver.event(openid, "CLICK", action.key)
        if action.kind == "scan":
            return say("me_scan"), lambda: self._scan(driver, openid, action.key)
        if action.kind == "photo":
            media_id = f"sandbox-photo-{next(self._photos)}"
            return say("me_photo"), lambda: driver.image(openid, media_id)
        if action.kind == "voice":
            shown = say("me_voice", text=action.text) if action.text else say("me_voice_empty")
            return shown, lambda: driver.voice(openid, action.text)
        return action.text, lambda: driver.text(openid, action.text)

    async def _scan(self, driver: PushDriver, openid: str, ticket: str) -> Delivery:
        # An expired code shows nothing to the bot, as on WeChat.
        return await driver.scan(openid, ticket) or Delivery()

    def _show_reply(self, openid: str, delivery: Delivery) -> None:
        at = self._now()
        if delivery.shown_error:
            self.transcripts.direct(openid, "bot", "error", PLATFORM_ERROR, at)
        elif delivery.text is not None:
            self.transcripts.direct(openid, "bot", "reply", delivery.text, at)
        elif delivery.reply is not None:
            kind = str(delivery.reply.get("MsgType", ""))
            self.transcripts.direct(openid, "bot", "reply", say("reply_other", type=kind), at)
        else:
            self.transcripts.direct(openid, "note", "success", say("reply_success"), at)

    def _note(self, openid: str, text: str) -> None:
        self.transcripts.direct(openid, "note", "note", text, self._now())

    def _now(self) -> str:
        return stamp(self.clock.now(), self.tz)


def load_menu(path: Path) -> dict[str, str]:
    """CLICK keys of conversations/menu.toml → the button's name."""
    return {entry["key"]: entry["name"] for entry in menu_buttons_flat(path)}


def menu_buttons(path: Path) -> list[dict[str, Any]]:
    """The custom menu as the page draws it: name, key, and sub-buttons."""
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    buttons = []
    for raw in data.get("button", []):
        subs = [
            {"name": str(sub.get("name", "")), "key": str(sub.get("key", ""))}
            for sub in raw.get("sub", [])
        ]
        buttons.append(
            {"name": str(raw.get("name", "")), "key": str(raw.get("key", "")), "sub": subs}
        )
    return buttons


def menu_buttons_flat(path: Path) -> list[dict[str, str]]:
    """Every button that sends a CLICK."""
    flat = []
    for button in menu_buttons(path):
        for entry in [button, *button["sub"]]:
            if entry["key"]:
                flat.append({"name": entry["name"], "key": entry["key"]})
    return flat
