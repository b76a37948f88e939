"""The visits' side of the chat: words (走访, 开展走访, 走访进度), to-dos, flow previews and
final actions, registered as one `Chat`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.conversation.bot import say as bot_say
from bangfu_bot.conversation.engine import ActionResult
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.members.service import Person
from bangfu_bot.todos.service import finish_todo
from bangfu_bot.visits import service
from bangfu_bot.visits.enums import FESTIVALS, Occasion
from bangfu_bot.visits.festivals import festival_after
from bangfu_bot.visits.models import visit_sends
from bangfu_bot.visits.service import Rules, VisitRefused, long_day, say

WORDS = frozenset({"visit", "visit_open", "visit_progress"})
FLOW_WORDS = frozenset({"visit", "visit_open"})  # words that begin a flow
TODO_KINDS = frozenset({service.TODO_KIND, service.WATCH_KIND})
# The occasion choices of campaign.toml (their words live in messages.toml).
OCCASIONS = {
    "choice_spring_festival": Occasion.SPRING_FESTIVAL,
    "choice_july_first": Occasion.JULY_FIRST,
    "choice_double_ninth": Occasion.DOUBLE_NINTH,
    "choice_custom": Occasion.CUSTOM,
}


@dataclass(frozen=True)
class Begin:
    """Begin this flow with this context (the router owns the dialogue)."""

    flow: str
    context: dict[str, Any] = field(default_factory=dict)


async def command(
    conn: AsyncConnection, *, word: str, person: Person | None, now: datetime, tz: ZoneInfo
) -> Begin | str:
    """走访 (report a visit), 开展走访 (open a campaign), 走访进度 (progress)."""
    if person is None:
        return bot_say("need_binding")
    today = now.astimezone(tz).date()
    if word == "visit_progress":
        return await service.progress_text(conn, viewer=person, today=today)
    if word == "visit_open":
        if not person.has("department"):
            return bot_say("not_allowed", role=bot_say("role_department"))
        return Begin("campaign", campaign_context(today))
    opened = await service.report_context(conn, reporter=person, today=today)
    return opened if isinstance(opened, str) else Begin("visit", opened)


async def open_todo(
    conn: AsyncConnection, *, todo: Any, person: Person, now: datetime, tz: ZoneInfo
) -> Begin | str:
    """A visit list opens the report flow; a township list shows who is still not visited."""
    today = now.astimezone(tz).date()
    if todo.kind == service.WATCH_KIND:
        await finish_todo(conn, todo.id, now)
        return await _watch_now(conn, todo_id=todo.id, person=person)
    opened = await service.report_context(conn, reporter=person, today=today, todo_id=todo.id)
    if isinstance(opened, str):
        await finish_todo(conn, todo.id, now)
        return opened
    return Begin("visit", opened)


async def _watch_now(conn: AsyncConnection, *, todo_id: int, person: Person) -> str:
    campaign_id = (
        await conn.execute(
            select(visit_sends.c.campaign_id).where(visit_sends.c.todo_id == todo_id)
        )
    ).scalar()
    township_id = await service.township_of(conn, person)
    if campaign_id is None or township_id is None:
        return bot_say("todo_done_already")
    campaign = await service.campaign_row(conn, campaign_id)
    rows = await service.not_visited(conn, campaign_id, township_id=township_id)
    if not rows:
        return say("watch_all_done", campaign=campaign.name)
    return "\n".join([say("watch_current"), service.not_visited_lines(rows)])


# --- opening a campaign by chat ----------------------------------------------------------------


def campaign_context(today: date) -> dict[str, Any]:
    """The opening flow's context: today, and the coming festivals to show in the question."""
    dates = {occasion: festival_after(occasion, today) for occasion in FESTIVALS}
    return {
        "today": today.isoformat(),
        "spring": long_day(dates[Occasion.SPRING_FESTIVAL]),
        "july": long_day(dates[Occasion.JULY_FIRST]),
        "double_ninth": long_day(dates[Occasion.DOUBLE_NINTH]),
    }


def _occasion(choice: str) -> Occasion:
    for key, occasion in OCCASIONS.items():
        if say(key) == choice:
            return occasion
    raise ValueError(f"no occasion is called {choice!r}")


def _plan(answers: dict[str, Any], today: date) -> service.Plan:
    occasion_on = answers.get("occasion_on")
    deadline = answers.get("deadline")
    return service.plan_campaign(
        _occasion(str(answers.get("occasion"))),
        today,
        name=answers.get("name"),
        occasion_on=date.fromisoformat(occasion_on) if occasion_on else None,
        deadline=date.fromisoformat(deadline) if deadline else None,
    )


def campaign_preview(
    answers: dict[str, Any], context: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Read back the festival date and deadline worked out; refuse impossible dates."""
    if "today" not in context:
        return [], [say("campaign_opening_needs_start")]
    today = date.fromisoformat(context["today"])
    try:
        plan = _plan(answers, today)
    except VisitRefused as refused:
        return [], [refused.message]
    occasion = say(f"occasion_{plan.occasion}") if plan.occasion != Occasion.CUSTOM else plan.name
    return [
        say("preview_occasion", day=long_day(plan.occasion_on), occasion=occasion),
        say("preview_deadline", deadline=long_day(plan.deadline)),
        say("preview_list", year=today.year),
        say(
            "preview_standard",
            standard=service.standard_text(int(answers.get("cash") or 0), answers.get("goods")),
        ),
    ], []


# --- what the router calls ---------------------------------------------------------------------


def _answer(ctx: Context, answer: Begin | str) -> Answer:
    return ctx.begin(answer.flow, answer.context) if isinstance(answer, Begin) else [answer]


async def word(ctx: Context, *, name: str) -> Answer:
    """A visits word; one that begins a flow waits while another flow is under way."""
    if name in FLOW_WORDS:
        busy = ctx.busy()
        if busy:
            return busy
    return _answer(
        ctx, await command(ctx.conn, word=name, person=ctx.person, now=ctx.now, tz=ctx.tz)
    )


async def visits_waiting(ctx: Context) -> bool:
    """走访 is offered while households are assigned to the person and not yet visited."""
    if ctx.person is None:
        return False
    opened = await service.report_context(ctx.conn, reporter=ctx.person, today=ctx.today)
    return not isinstance(opened, str)


async def todo(ctx: Context, item: Any) -> Answer:
    """A visit list or a township's not-visited list."""
    assert ctx.person is not None
    return _answer(
        ctx, await open_todo(ctx.conn, todo=item, person=ctx.person, now=ctx.now, tz=ctx.tz)
    )


async def campaign_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any], *, rules: Rules
) -> ActionResult:
    """visits.open_campaign: build the list from the ledger and hand it out."""
    plan = _plan(answers, ctx.today)
    opened = await service.open_campaign(
        ctx.conn,
        occasion=plan.occasion,
        now=ctx.now,
        tz=ctx.tz,
        cash_fen=int(answers.get("cash") or 0),
        goods=answers.get("goods"),
        occasion_on=plan.occasion_on,
        name=plan.name,
        deadline=plan.deadline,
        opened_by=ctx.person,
        rules=rules,
    )
    return ActionResult(opened.text)


async def report_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """visits.report: record one visit; its cash leaves the fund as relief."""
    assert ctx.person is not None
    text = await service.report_from_answers(
        ctx.conn, reporter=ctx.person, answers=answers, context=context, now=ctx.now, tz=ctx.tz
    )
    return ActionResult(text)


async def event_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any], *, rules: Rules
) -> ActionResult:
    """visits.open_event: a secretary opens a visit to one household after an event."""
    assert ctx.person is not None
    text = await service.open_event_visit(
        ctx.conn,
        secretary=ctx.person,
        member_name=str(answers["member_name"]),
        event_kind=str(answers["event"]),
        situation=answers.get("situation"),
        cash_fen=int(answers.get("cash") or 0),
        goods=answers.get("goods"),
        now=ctx.now,
        tz=ctx.tz,
        rules=rules,
    )
    return ActionResult(text)


def chat(*, rules: Rules | None = None) -> Chat:
    """The visits' chat under the county's visit rules."""
    rules = rules or Rules()
    return Chat(
        words={name: partial(word, name=name) for name in WORDS},
        todos=dict.fromkeys(TODO_KINDS, todo),
        offers={"visit": visits_waiting},
        actions={
            "visits.open_campaign": partial(campaign_action, rules=rules),
            "visits.report": report_action,
            "visits.open_event": partial(event_action, rules=rules),
        },
        previews={
            "visits.campaign_preview": campaign_preview,
            "visits.visit_preview": service.visit_preview,
        },
    )
