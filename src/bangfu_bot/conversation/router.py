"""The chat bot: decides what each push means and hands it to the engine or a command.

Order of precedence, so that a member is never stuck: delivery receipts are silent; global
words (帮助, 取消, 继续, 人工, 申请 …) work anywhere; an active flow gets everything else;
outside a flow an unknown sentence gets a pointer to 帮助.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot import db
from bangfu_bot.authority import Refused
from bangfu_bot.bot import SILENT_EVENTS, say
from bangfu_bot.broadcasts import service as broadcasts
from bangfu_bot.cases import procedure
from bangfu_bot.cases import service as cases
from bangfu_bot.cases.eligibility import Rule, load_rules
from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.procedure import Rules as ProcedureRules
from bangfu_bot.cases.transitions import load_case
from bangfu_bot.conversation import store
from bangfu_bot.conversation.engine import ActionResult, Engine, Input, Session, Turn
from bangfu_bot.conversation.flows import Flow, load_flows
from bangfu_bot.conversation.loan_actions import LOAN_ACTIONS, TODO_FLOWS
from bangfu_bot.group_commit import UnitOfWork
from bangfu_bot.ledger import service as ledger
from bangfu_bot.loans.service import Terms as LoanTerms
from bangfu_bot.members import service as members
from bangfu_bot.members.service import Person
from bangfu_bot.notify.outbox import queue_message, status_counts, template_finished
from bangfu_bot.todos.service import (
    add_todo,
    call_member_text,
    finish_todo,
    open_todos,
    todo_by_id,
)
from bangfu_bot.visits import chat as visits_chat
from bangfu_bot.wechat.inbound import Inbound

log = logging.getLogger(__name__)

# WeChat reportedly fails passive texts over ~600 characters: the rest follows separately.
PASSIVE_LIMIT = 600
PUNCTUATION = re.compile(r"[\s。，,.!！?？~～]+$")


@dataclass
class Context:
    """Everything about one push that commands and actions need."""

    conn: AsyncConnection
    openid: str
    person: Person | None
    dialogue: store.Dialogue
    now: datetime
    message: Inbound


Action = Callable[[Context, Flow, dict[str, Any], dict[str, Any]], Awaitable[ActionResult]]


class ChatBot:
    """Implements bangfu_bot.bot.Bot with the flows in conversations/."""

    def __init__(self, *, flows: dict[str, Flow], words: dict[str, str], menu: dict[str, str],
                 rules: list[Rule], tz: ZoneInfo, expiry: timedelta,
                 procedure: ProcedureRules | None = None,
                 loan_terms: LoanTerms | None = None) -> None:
        # `procedure` (the parameter) shadows the module inside this method on purpose:
        # callers pass the county's rules; without them the defaults apply.
        self.procedure = procedure or ProcedureRules(tz=tz)
        self.loan_terms = loan_terms or LoanTerms()
        self.engine = Engine(flows, {"cases.evaluation_preview": self._evaluation_preview,
                                     **visits_chat.PREVIEWS})
        self.words = words
        self.menu = menu
        self.rules = rules
        self.tz = tz
        self.expiry = expiry

    @classmethod
    def from_directory(cls, directory: str | Path, *, tz: ZoneInfo, expiry: timedelta,
                       procedure: ProcedureRules | None = None,
                       loan_terms: LoanTerms | None = None) -> ChatBot:
        """Load flows, words, menu and rules; raise FlowsInvalid on any flow problem."""
        directory = Path(directory)
        flows = load_flows(directory, ACTIONS, PREVIEWS)
        return cls(flows=flows, words=load_words(directory / "commands.toml"),
                   menu=load_menu(directory / "menu.toml"),
                   rules=load_rules(directory / "eligibility.toml"), tz=tz, expiry=expiry,
                   procedure=procedure, loan_terms=loan_terms)

    def _evaluation_preview(self, answers: dict[str, Any],
                            context: dict[str, Any]) -> tuple[list[str], list[str]]:
        preview = procedure.evaluation_preview(answers, self.procedure)
        return preview.lines, preview.problems

    async def handle(self, conn: AsyncConnection, message: Inbound, now: datetime) -> str | None:
        """Answer one push, saving the dialogue in the same transaction."""
        if message.is_event and message.event == "templatesendjobfinish":
            await template_finished(conn, msgid=_int(message.fields.get("MsgID")),
                                    status=str(message.fields.get("Status", "")), now=now)
            return None
        if message.is_event and message.event == "masssendjobfinish":
            fields = message.fields
            await broadcasts.mass_finished(conn, msg_id=str(fields.get("MsgID", "")),
                                           sent=_int(fields.get("SentCount")),
                                           errors=_int(fields.get("ErrorCount")))
            return None
        if message.is_event and message.event in SILENT_EVENTS:
            return None
        # The push's unit of work (a group commit's, with the batch's prefetched reads).
        uow = UnitOfWork.of(conn)
        dialogue = await store.load(uow, message.openid)
        person = await members.person_for_openid(conn, message.openid, uow)
        ctx = Context(conn, message.openid, person, dialogue, now, message)
        replies = await self._route(ctx)
        await store.save(uow, message.openid, dialogue, now)
        return await self._deliver(ctx, replies)

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
        if given.kind in {"text", "voice"}:
            return [say("not_understood")]
        return [say("text_only")]

    def _word(self, given: Input) -> str | None:
        if given.kind not in {"text", "voice"}:
            return None
        text = PUNCTUATION.sub("", given.text.strip()) if given.kind == "voice" else given.text
        return self.words.get(text.strip())

    def _expired(self, session: Session, now: datetime) -> bool:
        return (session.updated_at is not None and now - session.updated_at > self.expiry
                and session.state.get("step") != "@resume")

    async def _event(self, ctx: Context) -> list[str]:
        message = ctx.message
        if message.event in {"subscribe", "subscribe_scan", "scan"}:
            if message.event_key.startswith("bind:"):
                return await self._bind_by_qr(ctx, message.event_key)
            if message.event == "scan":
                return [self._help_text(ctx.person)]
            return [say("welcome")]
        if message.event == "click":
            word = self.words.get(self.menu.get(message.event_key, ""))
            if word is None:
                return [self._help_text(ctx.person)]
            return await self._command(ctx, word)
        return [say("unknown_type")]

    # --- commands ------------------------------------------------------------------------------

    async def _command(self, ctx: Context, word: str) -> list[str]:
        session = ctx.dialogue.current
        if word.startswith("flow:"):
            return await self._start(ctx, word.removeprefix("flow:"))
        if word == "help":
            if session.status == "active":
                return self.engine.help(session)
            return [self._help_text(ctx.person)]
        if word == "cancel":
            return self.engine.cancel(session)
        if word == "resume":
            return self._resume(ctx)
        if word == "human":
            return await self._human(ctx)
        if word == "progress":
            return await self._progress(ctx)
        if word == "unbind":
            return await self._unbind(ctx)
        if word == "todos":
            return await self._todos(ctx)
        if word == "file_all":
            return await self._file_all(ctx)
        if word == "sign_up":
            if ctx.person is None:
                return [say("need_binding")]
            return [await broadcasts.sign_up(ctx.conn, person_id=ctx.person.id, now=ctx.now)]
        if word in {"signups", "delivery_status"}:
            return await self._department_view(ctx, word)
        if word == "fund":
            return await self._fund(ctx)
        if word in visits_chat.WORDS:
            return await self._visits(ctx, word)
        raise ValueError(f"unknown command word {word!r} in commands.toml")

    async def _start(self, ctx: Context, flow_name: str) -> list[str]:
        flow = self.engine.flows[flow_name]
        session = ctx.dialogue.current
        if session.status == "active" and session.flow == flow_name:
            if self._expired(session, ctx.now):
                return self.engine.offer_resume(session)
            return self.engine.repeat(session)
        if session.status == "active":
            return [say_engine_busy(self.engine, session)]
        refusal = await self._refuse(ctx, flow)
        if refusal:
            return [refusal]
        if session.flow == flow_name and session.status == "paused":
            return self.engine.resume(session)
        ctx.dialogue.park()
        if ctx.dialogue.unpark(flow_name):
            return self.engine.resume(ctx.dialogue.current)
        return self.engine.begin(ctx.dialogue.current, flow_name, ctx.now)

    async def _refuse(self, ctx: Context, flow: Flow) -> str | None:
        person = ctx.person
        if flow.name == "bind":
            if person is not None:
                return say("already_bound", name=person.name)
            if await members.binding_locked(ctx.conn, ctx.openid, ctx.now):
                return say("bind_locked")
            return None
        if flow.requires == "any":
            return None
        if person is None:
            return say("need_binding")
        if flow.requires != "bound" and not person.has(flow.requires):
            return say("not_allowed", role=say(f"role_{flow.requires}"))
        return None

    def _resume(self, ctx: Context) -> list[str]:
        dialogue = ctx.dialogue
        if dialogue.current.status != "paused":
            draft = dialogue.latest_draft()
            if dialogue.current.status == "idle" and draft is not None:
                dialogue.unpark(draft)
        return self.engine.resume(dialogue.current)

    async def _human(self, ctx: Context) -> list[str]:
        person = ctx.person
        session = ctx.dialogue.current
        after = self.engine.repeat(session) if session.status == "active" else []
        if person is None:
            return [say("human_no_secretary"), *after]
        secretaries = [s for s in await members.secretaries_of(ctx.conn, person.branch_id)
                       if s != person.id]
        if not secretaries:
            return [say("human_no_secretary"), *after]
        where = ""
        if session.status == "active" and session.flow:
            where = say("human_todo_where", title=self.engine.flows[session.flow].title)
        for secretary_id in secretaries:
            await add_todo(ctx.conn, assignee_id=secretary_id, kind="call_member",
                           text=say("human_todo", name=person.name, where=where), now=ctx.now,
                           subject_id=person.id, key=f"human:{ctx.message.dedupe_key}")
        return [say("human_asked"), *after]

    async def _progress(self, ctx: Context) -> list[str]:
        if ctx.person is None:
            return [say("need_binding")]
        return [await cases.progress(ctx.conn, person=ctx.person, tz=self.tz)]

    async def _unbind(self, ctx: Context) -> list[str]:
        if not await members.unbind(ctx.conn, openid=ctx.openid, now=ctx.now):
            return [say("not_bound")]
        ctx.dialogue.current = Session()
        ctx.dialogue.drafts.clear()
        return [say("unbound")]

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
            lines.append(f"{n}. {first_line}（{day.month}月{day.day}日）")
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
        person = ctx.person
        assert person is not None
        if todo.kind in visits_chat.TODO_KINDS:
            answer = await visits_chat.open_todo(ctx.conn, todo=todo, person=person,
                                                 now=ctx.now, tz=self.tz)
            return self._visits_answer(ctx, answer)
        if todo.kind in TODO_FLOWS:
            from bangfu_bot.loans.prompts import loan_context

            return self._begin(ctx, TODO_FLOWS[todo.kind],
                               await loan_context(ctx.conn, int(todo.loan_id)))
        if todo.kind == "guarantor_call":
            await finish_todo(ctx.conn, todo.id, ctx.now)
            return [todo.text]
        if todo.kind in {"call_member", "tell_member"}:
            await finish_todo(ctx.conn, todo.id, ctx.now)
            told = [todo.text] if todo.kind == "tell_member" else []
            return [*told, await call_member_text(ctx.conn, todo.subject_id)]
        case = await load_case(ctx.conn, todo.case_id)
        name = await procedure.member_name(ctx.conn, case)
        context = {"case_id": case.id, "todo_id": todo.id, "name": name,
                   "branch": await procedure.branch_name(ctx.conn, case.branch_id)}
        if todo.kind in {"evaluate", "returned"}:
            # Opening these moves the case: an act, rolled back whole if refused.
            opened = await self._act(ctx, f"todo:{todo.kind}",
                                     lambda: self._open_case_step(ctx, todo, case, context))
            return [opened.text]
        if todo.kind == "objection":
            objection = await procedure.open_objection_for(ctx.conn, case.id)
            if objection is None:
                await finish_todo(ctx.conn, todo.id, ctx.now)
                return [say("todo_done_already")]
            context.update(objection_id=objection.id, text=objection.text)
            return self._begin(ctx, "resolve", context)
        if todo.kind == "review":
            entry = await ledger.entry_for_review(ctx.conn, case.id)
            if entry is None:
                await finish_todo(ctx.conn, todo.id, ctx.now)
                return [say("todo_done_already")]
            context.update(ledger.review_context(entry))
            context["todo_id"] = todo.id
            return self._begin(ctx, "review", context)
        flow = {"report": "report", "approve": "approve", "file": "file"}.get(todo.kind)
        if flow is None:
            return [say("todo_done_already")]
        return self._begin(ctx, flow, context)

    async def _open_case_step(self, ctx: Context, todo: Any, case: Any,
                              context: dict[str, Any]) -> ActionResult:
        """An evaluation to-do opens the evaluation; a returned case goes back to its step."""
        person = ctx.person
        assert person is not None
        if todo.kind == "evaluate":
            await procedure.start_evaluation(ctx.conn, case_id=case.id, secretary=person,
                                             now=ctx.now)
            return ActionResult("\n\n".join(self._begin(ctx, "evaluate", context)))
        text, target = await procedure.resume_returned(ctx.conn, case_id=case.id,
                                                       secretary=person, now=ctx.now)
        if target == "under_evaluation":
            return ActionResult("\n\n".join([text, *self._begin(ctx, "evaluate", context)]))
        await procedure.reopen_for_evaluation(ctx.conn, case_id=case.id, now=ctx.now)
        return ActionResult(text)

    async def _visits(self, ctx: Context, word: str) -> list[str]:
        session = ctx.dialogue.current
        if word in visits_chat.FLOW_WORDS and session.status == "active":
            return [say_engine_busy(self.engine, session)]
        answer = await visits_chat.command(ctx.conn, word=word, person=ctx.person, now=ctx.now,
                                           tz=self.tz)
        return self._visits_answer(ctx, answer)

    def _visits_answer(self, ctx: Context, answer: visits_chat.Begin | str) -> list[str]:
        if isinstance(answer, visits_chat.Begin):
            return self._begin(ctx, answer.flow, answer.context)
        return [answer]

    def _begin(self, ctx: Context, flow_name: str, context: dict[str, Any]) -> list[str]:
        ctx.dialogue.park()
        return self.engine.begin(ctx.dialogue.current, flow_name, ctx.now, context)

    async def _department_view(self, ctx: Context, word: str) -> list[str]:
        person = ctx.person
        if person is None:
            return [say("need_binding")]
        if not (person.has("department") or person.has("supervisor")):
            return [say("not_allowed", role=say("role_department"))]
        if word == "signups":
            return [await broadcasts.signup_list(ctx.conn)]
        from bangfu_bot.notify.outbox import say as say_outbox

        counts = await status_counts(ctx.conn)
        lines = [broadcasts.say("status_header")]
        for status in ("sent", "delivered", "escalated", "pending", "undeliverable", "unknown",
                       "unknown_escalated", "failed"):
            if counts.get(status):
                label = (say_outbox(f"status_{status}") if status == "unknown_escalated"
                         else say(f"outbox_{status}"))
                lines.append(broadcasts.say("status_line", label=label, count=counts[status]))
        latest = await broadcasts.latest_report(ctx.conn, self.tz)
        return ["\n".join([*lines, latest] if latest else lines)]

    async def _fund(self, ctx: Context) -> list[str]:
        """基金: the current figures, for the supervision group and the department."""
        from bangfu_bot.fund.service import fund_summary

        person = ctx.person
        if person is None:
            return [say("need_binding")]
        if not (person.has("supervisor") or person.has("department")):
            return [say("not_allowed", role=say("role_supervisor"))]
        return [await fund_summary(ctx.conn, today=ctx.now.astimezone(self.tz).date())]

    async def _file_all(self, ctx: Context) -> list[str]:
        flow = self.engine.flows["file_all"]
        refusal = await self._refuse(ctx, flow)
        if refusal:
            return [refusal]
        if ctx.dialogue.current.status == "active":
            return [say_engine_busy(self.engine, ctx.dialogue.current)]
        waiting = await procedure.approved_cases(ctx.conn)
        if not waiting:
            return [cases.say("nothing_to_file")]
        names = "、".join(row.name for row in waiting[:10]) + ("等" if len(waiting) > 10 else "")
        return self._begin(ctx, "file_all", {"count": len(waiting), "names": names})

    async def _bind_by_qr(self, ctx: Context, scene: str) -> list[str]:
        if ctx.person is not None:
            return [say("already_bound", name=ctx.person.name)]
        person = await members.bind_by_ticket(ctx.conn, openid=ctx.openid,
                                              scene=scene.removeprefix("bind:"), now=ctx.now)
        if person is None:
            return [say("bind_qr_invalid")]
        return [say("bind_qr_ok", name=person.name)]

    def _help_text(self, person: Person | None) -> str:
        if person is None:
            return say("help_unbound")
        if person.has("secretary"):
            return say("help_secretary")
        return say("help_member")

    # --- actions -------------------------------------------------------------------------------

    def _turn(self, ctx: Context) -> Turn:
        async def run_action(flow: Flow, answers: dict[str, Any],
                             context: dict[str, Any]) -> ActionResult:
            return await self._act(ctx, flow.action, lambda: ACTIONS[flow.action](
                self, ctx, flow, answers, context))

        return Turn(now=ctx.now, today=ctx.now.astimezone(self.tz).date(), run_action=run_action)

    async def _act(self, ctx: Context, name: str,
                   act: Callable[[], Awaitable[ActionResult]]) -> ActionResult:
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

    async def _deliver(self, ctx: Context, replies: list[str]) -> str | None:
        parts = [piece for reply in replies if reply for piece in pieces(reply)]
        if not parts:
            return None
        # As few messages as fit: each follow-up spends one of the member's five
        # customer-service messages in the window.
        passive, *rest = _joined(parts)
        for n, extra in enumerate(rest, start=1):
            await queue_message(ctx.conn, key=f"followup:{ctx.message.dedupe_key}:{n}",
                                openid=ctx.openid, kind="followup", content=extra,
                                reason="continuation of a long answer", now=ctx.now,
                                urgent=True)
        return passive


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


def say_engine_busy(engine: Engine, session: Session) -> str:
    """The user tried to start a flow while another is under way."""
    from bangfu_bot.conversation.engine import say as engine_say

    return engine_say("busy_in_flow", title=engine.flows[session.flow or ""].title)


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
    return text.strip("【】[] ") == "收到不支持的消息类型，暂无法显示"


def load_words(path: Path) -> dict[str, str]:
    """Global words from commands.toml."""
    return {str(word): str(command)
            for word, command in tomllib.loads(path.read_text(encoding="utf-8"))["words"].items()}


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


# --- the final actions named by flows ---------------------------------------------------------


async def bind_action(bot: ChatBot, ctx: Context, flow: Flow, answers: dict[str, Any],
                      context: dict[str, Any]) -> ActionResult:
    """members.bind: name + last six ID characters → binding (five misses lock an hour, for
    the WeChat user and for the name tried); the person's earlier WeChat user is told."""
    person = await members.try_bind(ctx.conn, openid=ctx.openid, name=answers["name"],
                                    id_tail=answers["id_tail"], now=ctx.now)
    if person is not None:
        ctx.person = person
        return ActionResult(say("bind_ok", name=person.name))
    if await members.binding_locked(ctx.conn, ctx.openid, ctx.now):
        return ActionResult(say("bind_locked"))
    if await members.name_locked(ctx.conn, answers["name"], ctx.now):
        return ActionResult(say("bind_name_locked"))
    return ActionResult(say("bind_mismatch"), restart=True)


async def apply_action(bot: ChatBot, ctx: Context, flow: Flow, answers: dict[str, Any],
                       context: dict[str, Any]) -> ActionResult:
    """cases.submit_application: create the case; 代办 when the context names a member."""
    assert ctx.person is not None
    member = ctx.person
    consent = False
    if context.get("subject_id"):
        subject = await members.person_by_id(ctx.conn, int(context["subject_id"]))
        if subject is None or subject.branch_id != ctx.person.branch_id:
            return ActionResult(cases.say("proxy_not_found"))
        member, consent = subject, bool(context.get("consent"))
    filing = cases.Filing(member=member, filer=ctx.person, channel="chat",
                          consent_recorded=consent)
    text = await cases.submit_application(ctx.conn, filing=filing, answers=answers,
                                          rules=bot.rules, now=ctx.now, tz=bot.tz)
    return ActionResult(text)


async def proxy_action(bot: ChatBot, ctx: Context, flow: Flow, answers: dict[str, Any],
                       context: dict[str, Any]) -> ActionResult:
    """cases.start_proxy: a secretary picks a member of the branch, with consent → apply."""
    assert ctx.person is not None
    if not answers.get("consent"):
        return ActionResult(cases.say("proxy_no_consent"))
    member = await cases.find_member_in_branch(ctx.conn, secretary=ctx.person,
                                               name=answers["member_name"],
                                               id_tail=answers["id_tail"])
    if member is None:
        return ActionResult(cases.say("proxy_not_found"), restart=True)
    return ActionResult(cases.say("proxy_start", name=member.name), then_flow="apply",
                        then_context={"subject_id": member.id, "consent": True})


def _refusal(action: Callable[..., Awaitable[str]]) -> Callable[..., Awaitable[ActionResult]]:
    """Run a procedure step for its answer. A refusal is not caught here: it rises to
    `ChatBot._act`, which rolls the step back before answering."""

    async def run(bot: ChatBot, ctx: Context, flow: Flow, answers: dict[str, Any],
                  context: dict[str, Any]) -> ActionResult:
        return ActionResult(await action(bot, ctx, answers, context))

    return run


@_refusal
async def evaluation_action(bot: ChatBot, ctx: Context, answers: dict[str, Any],
                            context: dict[str, Any]) -> str:
    """cases.record_evaluation."""
    assert ctx.person is not None
    return await procedure.record_evaluation(ctx.conn, case_id=int(context["case_id"]),
                                             secretary=ctx.person, answers=answers,
                                             rules=bot.procedure, now=ctx.now)


@_refusal
async def report_action(bot: ChatBot, ctx: Context, answers: dict[str, Any],
                        context: dict[str, Any]) -> str:
    """cases.report."""
    assert ctx.person is not None
    return await procedure.report(ctx.conn, case_id=int(context["case_id"]),
                                  secretary=ctx.person, note=answers.get("note"), now=ctx.now)


@_refusal
async def decide_action(bot: ChatBot, ctx: Context, answers: dict[str, Any],
                        context: dict[str, Any]) -> str:
    """cases.decide: approve, or return to the named step with a reason."""
    assert ctx.person is not None
    approve = answers["decision"] == "批准"
    return_to = None
    if not approve:
        return_to = (CaseStatus.SUBMITTED if answers.get("return_to") == "补充申请材料"
                     else CaseStatus.UNDER_EVALUATION)
    return await procedure.decide(ctx.conn, case_id=int(context["case_id"]), officer=ctx.person,
                                  approve=approve, return_to=return_to,
                                  reason=answers.get("reason"), now=ctx.now)


@_refusal
async def file_action(bot: ChatBot, ctx: Context, answers: dict[str, Any],
                      context: dict[str, Any]) -> str:
    """cases.file."""
    assert ctx.person is not None
    return await procedure.file_case(ctx.conn, case_id=int(context["case_id"]), staff=ctx.person,
                                     paired_cadre=answers.get("paired_cadre"), channel="chat",
                                     now=ctx.now, rules=bot.procedure)


@_refusal
async def objection_action(bot: ChatBot, ctx: Context, answers: dict[str, Any],
                           context: dict[str, Any]) -> str:
    """cases.raise_objection."""
    assert ctx.person is not None
    return await procedure.raise_objection(ctx.conn, person=ctx.person, name=answers["name"],
                                           text=answers["text"], now=ctx.now)


@_refusal
async def resolve_action(bot: ChatBot, ctx: Context, answers: dict[str, Any],
                         context: dict[str, Any]) -> str:
    """cases.resolve_objection."""
    assert ctx.person is not None
    text = await procedure.resolve_objection(ctx.conn, objection_id=int(context["objection_id"]),
                                             secretary=ctx.person,
                                             resolution=answers["resolution"], now=ctx.now)
    await finish_todo(ctx.conn, int(context["todo_id"]), ctx.now)
    return text


@_refusal
async def file_all_action(bot: ChatBot, ctx: Context, answers: dict[str, Any],
                          context: dict[str, Any]) -> str:
    """cases.file_all (批量备案)."""
    assert ctx.person is not None
    if not answers.get("confirm"):
        return cases.say("file_all_declined")
    return await procedure.file_all(ctx.conn, staff=ctx.person, channel="chat", now=ctx.now,
                                    rules=bot.procedure)


async def broadcast_action(bot: ChatBot, ctx: Context, flow: Flow, answers: dict[str, Any],
                           context: dict[str, Any]) -> ActionResult:
    """broadcasts.send: queue the notice for its audience (the dispatcher mass-sends it)."""
    assert ctx.person is not None
    audience = _audience(str(answers["audience"]), str(answers.get("place") or ""))
    broadcast_id, count = await broadcasts.create(
        ctx.conn, author=ctx.person, text=str(answers["text"]), audience=audience,
        training=bool(answers.get("training")), now=ctx.now, tz=bot.tz)
    return ActionResult(broadcasts.say("queued", id=broadcast_id, count=count))


def _audience(choice: str, place: str) -> str:
    kinds = {"全县": "everyone", "一个党委": f"township:{place}", "一个支部": f"branch:{place}",
             "所有支部书记": "role:secretary", "台帐中一类党员": f"category:{place}"}
    return kinds[choice]


@_refusal
async def review_action(bot: ChatBot, ctx: Context, answers: dict[str, Any],
                        context: dict[str, Any]) -> str:
    """ledger.review: continue into next year's ledger, or exit with a reason."""
    assert ctx.person is not None
    text = await ledger.review(ctx.conn, entry_id=int(context["entry_id"]), secretary=ctx.person,
                               answers=answers, now=ctx.now)
    await finish_todo(ctx.conn, int(context["todo_id"]), ctx.now)
    return text


ACTIONS: dict[str, Callable[..., Awaitable[ActionResult]]] = {
    "members.bind": bind_action,
    "cases.submit_application": apply_action,
    "cases.start_proxy": proxy_action,
    "cases.record_evaluation": evaluation_action,
    "cases.report": report_action,
    "cases.decide": decide_action,
    "cases.file": file_action,
    "cases.raise_objection": objection_action,
    "cases.resolve_objection": resolve_action,
    "ledger.review": review_action,
    "cases.file_all": file_all_action,
    "broadcasts.send": broadcast_action,
    **LOAN_ACTIONS,
    **visits_chat.ACTIONS,
}
PREVIEWS = ("cases.evaluation_preview", *visits_chat.PREVIEWS)
