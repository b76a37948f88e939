"""The chat bot: decides what each push means and hands it to the engine or a domain.

Order of precedence, so that a member is never stuck: delivery receipts are silent; global
words (帮助, 取消, 继续, 人工, 申请 …) work anywhere; an active flow gets everything else;
outside a flow an unknown sentence gets a pointer to 帮助.

The router knows no domain. Words, events, QR scenes, to-do kinds, final actions, previews
and guards are looked up in the `Registry` each domain's `chat.py` contributes to (gathered
by `bangfu_bot.chats`); what is left here is the dialogue itself: flows, drafts, to-do lists,
help, and the savepoint every act runs in.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tomllib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot import db
from bangfu_bot.authority import Refused, roles_of
from bangfu_bot.common.dates import month_day
from bangfu_bot.conversation import store
from bangfu_bot.conversation.bot import SILENT_EVENTS, Inbound, say
from bangfu_bot.conversation.engine import ActionResult, Checked, Engine, Input, Session, Turn
from bangfu_bot.conversation.engine import say as engine_say
from bangfu_bot.conversation.flows import Flow, load_flows
from bangfu_bot.conversation.help import Group, load_help, may_begin, offered
from bangfu_bot.conversation.registry import Context, Registry
from bangfu_bot.group_commit import UnitOfWork
from bangfu_bot.members.service import Person, person_for_openid
from bangfu_bot.notify.intents import Tell, write
from bangfu_bot.notify.outbox import template_finished
from bangfu_bot.todos.service import call_member_text, finish_todo, open_todos, todo_by_id

log = logging.getLogger(__name__)

# WeChat reportedly fails passive texts over ~600 characters: the rest follows separately.
PASSIVE_LIMIT = 600
PUNCTUATION = re.compile(r"[\s。，,.!！?？~～]+$")
# To-dos that only ask the assignee to phone someone: opening one shows whom, and ends it.
CALL_KINDS = frozenset({"call_member", "tell_member"})


class ChatBot:
    """Implements bangfu_bot.conversation.bot.Bot with the flows in conversations/."""

    def __init__(
        self,
        *,
        flows: dict[str, Flow],
        words: dict[str, str],
        menu: dict[str, str],
        registry: Registry,
        tz: ZoneInfo,
        expiry: timedelta,
        help_groups: tuple[Group, ...] = (),
    ) -> None:
        self.engine = Engine(flows, dict(registry.previews))
        self.help_groups = help_groups
        self.registry = registry
        self.words = words
        self.menu = menu
        self.tz = tz
        self.expiry = expiry
        unknown = sorted(
            command
            for command in words.values()
            if not command.startswith("flow:")
            and command not in CORE_WORDS
            and command not in registry.words
        )
        if unknown:
            raise ValueError(f"commands.toml names words no domain answers: {unknown}")

    @classmethod
    def from_directory(
        cls, directory: str | Path, *, registry: Registry, tz: ZoneInfo, expiry: timedelta
    ) -> ChatBot:
        """Load flows, words and menu; raise FlowsInvalid on any flow problem."""
        directory = Path(directory)
        flows = load_flows(directory, registry.actions, registry.previews, registry.checks)
        words = load_words(directory / "commands.toml")
        return cls(
            flows=flows,
            words=words,
            menu=load_menu(directory / "menu.toml"),
            registry=registry,
            tz=tz,
            expiry=expiry,
            help_groups=load_help(directory / "commands.toml", words, flows),
        )

    async def handle(self, conn: AsyncConnection, message: Inbound, now: datetime) -> str | None:
        """Answer one push, saving the dialogue in the same transaction."""
        if message.is_event and message.event == "templatesendjobfinish":
            await template_finished(
                conn,
                msgid=_int(message.fields.get("MsgID")),
                status=str(message.fields.get("Status", "")),
                now=now,
            )
            return None
        receipt = self.registry.events.get(message.event or "") if message.is_event else None
        if receipt is not None and message.event in SILENT_EVENTS:
            # A receipt a domain keeps (群发 results): no dialogue, no answer.
            await receipt(
                Context(
                    conn,
                    message.openid,
                    None,
                    store.Dialogue(Session(), {}),
                    now,
                    message,
                    self.tz,
                    self,
                )
            )
            return None
        if message.is_event and message.event in SILENT_EVENTS:
            return None
        # The push's unit of work (a group commit's, with the batch's prefetched reads).
        uow = UnitOfWork.of(conn)
        dialogue = await store.load(uow, message.openid)
        person = await person_for_openid(conn, message.openid, uow)
        ctx = Context(conn, message.openid, person, dialogue, now, message, self.tz, self)
        replies = await self._route(ctx)
        await store.save(uow, message.openid, dialogue, now)
        return await self._deliver(ctx, replies)

    # --- what domains call back (through Context) ----------------------------------------------

    def begin(self, ctx: Context, flow_name: str, context: dict[str, Any]) -> list[str]:
        """Put the flow under way aside and begin another."""
        ctx.dialogue.park()
        return self.engine.begin(ctx.dialogue.current, flow_name, ctx.now, context)

    def busy(self, ctx: Context) -> list[str] | None:
        """The answer when a flow is under way, else None."""
        session = ctx.dialogue.current
        if session.status != "active":
            return None
        return [engine_say("busy_in_flow", title=self.engine.flows[session.flow or ""].title)]

    async def act(
        self, ctx: Context, name: str, act: Callable[[], Awaitable[ActionResult]]
    ) -> ActionResult:
        """Run one act in a savepoint of the push's transaction: a refusal (any `Refused`)
        rolls back everything the act wrote — a movement, a to-do, a message — before the
        actor is answered with its plain reason. Any other error rolls it back too and
        rises (the push gets the apology; its unit is retried alone)."""
        savepoint = await db.savepoint(ctx.conn)
        try:
            result = await act()
        except Refused as refused:
            await savepoint.rollback()
            log.info("act %s refused: %s", name, refused.reason)
            return ActionResult(refused.message, stay=refused.fixable)
        except BaseException:
            if savepoint.is_active:
                with contextlib.suppress(Exception):
                    await savepoint.rollback()
            raise
        await savepoint.commit()
        return result

    # --- routing -------------------------------------------------------------------------------

    async def _route(self, ctx: Context) -> list[str]:
        message = ctx.message
        if message.is_event:
            return await self._event(ctx)
        if not message.known:
            return [say("unknown_type")]
        given = _input(message)
        word = self._word(given)
        session = ctx.dialogue.current
        if word is not None:
            return await self._command(ctx, word)
        if session.status == "active":
            if self._expired(session, ctx.now):
                return self.engine.offer_resume(session)
            return await self.engine.answer(session, given, self._turn(ctx))
        picked = await self._pick_todo(ctx, given)
        if picked is not None:
            return picked
        if given.text.strip() == "返回":
            return [say("return_outside_flow")]
        if given.kind in {"text", "voice"} and ctx.person is None:
            return [say("not_understood_unbound")]
        if given.kind in {"text", "voice"}:
            return [say("not_understood")]
        return [say("text_only")]

    def _word(self, given: Input) -> str | None:
        if given.kind not in {"text", "voice"}:
            return None
        text = PUNCTUATION.sub("", given.text.strip()) if given.kind == "voice" else given.text
        word = self.words.get(text.strip())
        if word is None:
            # 「你好！」「Hi」「在吗？」: a word with the punctuation or capitals people add.
            word = self.words.get(PUNCTUATION.sub("", text.strip()).lower())
        return word

    def _expired(self, session: Session, now: datetime) -> bool:
        return (
            session.updated_at is not None
            and now - session.updated_at > self.expiry
            and session.state.get("step") != "@resume"
        )

    async def _event(self, ctx: Context) -> list[str]:
        message = ctx.message
        if message.event in {"subscribe", "subscribe_scan", "scan"}:
            scene, colon, rest = message.event_key.removeprefix("qrscene_").partition(":")
            handler = self.registry.scenes.get(scene) if colon else None
            if handler is not None:
                return await handler(ctx, rest)
            if message.event == "scan":
                return [await self.help_text(ctx)]
            return [say("welcome")]
        if message.event == "click":
            word = self.words.get(self.menu.get(message.event_key, ""))
            if word is None or not await self._usable(ctx, word):
                # A button this person cannot use (the menu is the same for everyone):
                # what they can use instead.
                return [await self.help_text(ctx)]
            return await self._command(ctx, word)
        handler_event = self.registry.events.get(message.event or "")
        if handler_event is not None:
            return await handler_event(ctx) or []
        return [say("unknown_type")]

    # --- commands ------------------------------------------------------------------------------

    async def _command(self, ctx: Context, word: str) -> list[str]:
        session = ctx.dialogue.current
        if word.startswith("flow:"):
            return await self._start(ctx, word.removeprefix("flow:"))
        if word == "help":
            if session.status == "active":
                return self.engine.help(session)
            return [await self.help_text(ctx)]
        if word == "hello":
            return await self._hello(ctx)
        if word == "cancel":
            return self.engine.cancel(session)
        if word == "resume":
            return self._resume(ctx)
        if word == "todos":
            return await self._todos(ctx)
        return await self.registry.words[word](ctx)

    async def _start(self, ctx: Context, flow_name: str) -> list[str]:
        session = ctx.dialogue.current
        if session.status == "active" and session.flow == flow_name:
            if self._expired(session, ctx.now):
                return self.engine.offer_resume(session)
            return self.engine.repeat(session)
        busy = self.busy(ctx)
        if busy:
            return busy
        refusal = await self.refusal(ctx, self.engine.flows[flow_name])
        if refusal:
            return [refusal]
        if session.flow == flow_name and session.status == "paused":
            return self.engine.resume(session)
        ctx.dialogue.park()
        if ctx.dialogue.unpark(flow_name):
            return self.engine.resume(ctx.dialogue.current)
        return self.engine.begin(ctx.dialogue.current, flow_name, ctx.now)

    async def refusal(self, ctx: Context, flow: Flow) -> str | None:
        """Why this person may not begin this flow, or None: the role the flow requires and
        its act, then its domain's guard (绑定 refuses the bound, 借款 an open loan)."""
        guard = self.registry.guards.get(flow.name)
        return self._role_refusal(ctx, flow) or (await guard(ctx) if guard else None)

    def _role_refusal(self, ctx: Context, flow: Flow) -> str | None:
        person = ctx.person
        if flow.requires == "any":
            return None
        if person is None:
            return say("need_binding")
        if flow.requires != "bound" and not person.has(flow.requires):
            return say("not_allowed", role=say(f"role_{flow.requires}"))
        if not may_begin(flow, person):
            roles = [role for role in roles_of(flow.act) if role not in {"system", "bound"}]
            joiner = say("roles_joiner")
            return say("not_allowed", role=joiner.join(say(f"role_{role}") for role in roles))
        return None

    def _resume(self, ctx: Context) -> list[str]:
        dialogue = ctx.dialogue
        if dialogue.current.status != "paused":
            draft = dialogue.latest_draft()
            if dialogue.current.status == "idle" and draft is not None:
                dialogue.unpark(draft)
        return self.engine.resume(dialogue.current)

    async def _todos(self, ctx: Context) -> list[str]:
        if ctx.person is None:
            return [say("need_binding")]
        rows = await open_todos(ctx.conn, ctx.person.id)
        if not rows:
            return [say("no_todos")]
        lines = [say("todos_header")]
        for n, row in enumerate(rows, start=1):
            day = row.created_at.astimezone(self.tz)
            first_line = row.text.splitlines()[0]
            lines.append(say("todos_line", n=n, text=first_line, day=month_day(day)))
        lines.append(say("todos_pick"))
        if ctx.dialogue.current.status != "active":
            ctx.dialogue.current.state["pick"] = [row.id for row in rows]
        return ["\n".join(lines)]

    async def _pick_todo(self, ctx: Context, given: Input) -> list[str] | None:
        """A number right after 待办 opens that to-do's flow."""
        session = ctx.dialogue.current
        picks = session.state.pop("pick", None) if session.status != "active" else None
        if not picks or ctx.person is None or not given.text.strip().isdigit():
            return None
        number = int(given.text.strip())
        if not 1 <= number <= len(picks):
            session.state["pick"] = picks
            return [say("todos_out_of_range", n=number)]
        todo = await todo_by_id(ctx.conn, picks[number - 1])
        if todo is None or todo.done_at is not None:
            return [say("todo_done_already")]
        return await self._open_todo(ctx, todo)

    async def _open_todo(self, ctx: Context, todo: Any) -> list[str]:
        if todo.kind in CALL_KINDS:
            await finish_todo(ctx.conn, todo.id, ctx.now)
            told = [todo.text] if todo.kind == "tell_member" else []
            return [*told, await call_member_text(ctx.conn, todo.subject_id)]
        opener = self.registry.todos.get(todo.kind)
        if opener is None:
            return [say("todo_done_already")]
        return await opener(ctx, todo)

    async def help_text(self, ctx: Context) -> str:
        """帮助 and 菜单 outside a flow: who the person is, then the words they may use now,
        grouped (see conversation/help.py)."""
        person = ctx.person
        if person is None:
            return say("help_unbound")
        lines = [say("help_who", name=person.name, who=who_is(person)), say("help_reply")]
        # Whoever has a to-do now (a paired cadre's visit list) is offered 待办 too.
        waiting = frozenset({"todos"}) if await open_todos(ctx.conn, person.id) else frozenset()
        groups = await offered(
            self.help_groups, person, self.engine.flows, self.registry.offers, ctx, waiting
        )
        for title, entries in groups:
            lines.append(say("help_group", title=title))
            lines.extend(say("help_line", word=entry.word, does=entry.does) for entry in entries)
        return "\n".join(lines)

    async def _hello(self, ctx: Context) -> list[str]:
        """你好 and the like: a stranger learns how to start; a member gets their words; in a
        flow, the question again."""
        session = ctx.dialogue.current
        if session.status == "active":
            if self._expired(session, ctx.now):
                return self.engine.offer_resume(session)
            return [say("hello_in_flow"), *self.engine.repeat(session)]
        if ctx.person is None:
            return [say("hello_unbound")]
        return [await self.help_text(ctx)]

    async def _usable(self, ctx: Context, command: str) -> bool:
        """Whether a menu button's word is one this person may use (else 帮助 answers)."""
        if not command.startswith("flow:"):
            return True
        return may_begin(self.engine.flows[command.removeprefix("flow:")], ctx.person)

    # --- actions -------------------------------------------------------------------------------

    def _turn(self, ctx: Context) -> Turn:
        async def run_action(
            flow: Flow, answers: dict[str, Any], context: dict[str, Any]
        ) -> ActionResult:
            action = self.registry.actions[flow.action]
            return await self.act(ctx, flow.action, lambda: action(ctx, answers, context))

        async def run_check(
            name: str, step_id: str, answers: dict[str, Any], context: dict[str, Any]
        ) -> Checked:
            return await self.registry.checks[name](ctx, step_id, answers, context)

        return Turn(now=ctx.now, today=ctx.today, run_action=run_action, run_check=run_check)

    async def _deliver(self, ctx: Context, replies: list[str]) -> str | None:
        parts = [piece for reply in replies if reply for piece in pieces(reply)]
        if not parts:
            return None
        # As few messages as fit: each follow-up spends one of the member's five
        # customer-service messages in the window.
        passive, *rest = _joined(parts)
        await write(
            ctx.conn,
            [
                Tell(
                    f"followup:{ctx.message.dedupe_key}:{n}",
                    extra,
                    "continuation of a long answer",
                    openid=ctx.openid,
                    kind="followup",
                    urgent=True,
                )
                for n, extra in enumerate(rest, start=1)
            ],
            now=ctx.now,
        )
        return passive


# The words the router answers itself; every other command id belongs to a domain.
CORE_WORDS = frozenset({"help", "hello", "cancel", "resume", "todos"})


def _joined(parts: list[str], limit: int = PASSIVE_LIMIT) -> list[str]:
    """Consecutive parts joined by a blank line while the message stays within `limit`."""
    messages = [parts[0]]
    for part in parts[1:]:
        if len(messages[-1]) + 2 + len(part) <= limit:
            messages[-1] += "\n\n" + part
        else:
            messages.append(part)
    return messages


def pieces(text: str, limit: int = PASSIVE_LIMIT) -> list[str]:
    """A long answer in parts of at most `limit` characters, cut at a blank line where
    there is one, else at a line end, else at the limit (a notice's own text has none)."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n\n", 0, limit)
        if cut <= 0:
            cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n")
    return [*parts, text] if text else parts


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _input(message: Inbound) -> Input:
    if message.msg_type == "voice":
        return Input("voice", message.content)
    if message.msg_type == "image":
        return Input("image", media_id=message.media_id)
    if message.msg_type == "text" and not _unsupported(message.content):
        return Input("text", message.content)
    return Input("other")


def _unsupported(text: str) -> bool:
    """WeChat's stand-in for what it cannot pass on (a sticker, a red packet…), which
    arrives as text: never an answer (it would be stored as someone's living situation)."""
    # stays in Python: WeChat's own words, which the router recognises and never says
    return text.strip("【】[] ") == "收到不支持的消息类型，暂无法显示"


def load_words(path: Path) -> dict[str, str]:
    """Global words from commands.toml."""
    return {
        str(word): str(command)
        for word, command in tomllib.loads(path.read_text(encoding="utf-8"))["words"].items()
    }


def load_menu(path: Path) -> dict[str, str]:
    """CLICK keys of the custom menu → the word each stands for."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    keys: dict[str, str] = {}
    for button in data.get("button", []):
        for entry in [button, *button.get("sub", [])]:
            if "key" in entry:
                keys[str(entry["key"])] = str(entry["word"])
    return keys


# The order roles are named in, most senior first; a secretary is a member too.
ROLE_ORDER = ("department", "supervisor", "committee", "secretary", "member")


def who_is(person: Person) -> str:
    """王德福 is 「桃源村党支部党员」; 赵明 「青山镇党委委员、李家村党支部党员」."""
    roles = [role for role in ROLE_ORDER if person.has(role)]
    if "secretary" in roles and "member" in roles:
        roles.remove("member")
    branch, committee = person.branch_name or "", person.committee_name or ""
    named = [say(f"who_{role}", branch=branch, committee=committee) for role in roles]
    return say("roles_joiner").join(named) or say("who_bound")
