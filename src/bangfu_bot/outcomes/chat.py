"""The outcomes' side of the chat: 年度计划, 签到, 去世登记, the yearly review's outcome and
the loan follow-up to-do."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.engine import ActionResult
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.ledger import service as ledger
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import people
from bangfu_bot.outcomes import service as outcomes
from bangfu_bot.todos.service import finish_todo


async def year_plan(ctx: Context) -> Answer:
    """年度计划: this year's plan, for the department and the supervision group."""
    if ctx.person is None:
        return [outcomes.say("plan_need_binding")]
    if not (ctx.person.has("department") or ctx.person.has("supervisor")):
        return [outcomes.say("plan_only_staff")]
    year = ctx.today.year
    return [outcomes.plan_text(await outcomes.plan_for(ctx.conn, year), year)]


async def sign_in(ctx: Context) -> Answer:
    """签到: the member came to the training."""
    if ctx.person is None:
        return [say("need_binding")]
    person = ctx.person

    async def act() -> ActionResult:
        return ActionResult(await outcomes.sign_in(ctx.conn, person=person, now=ctx.now))

    return [(await ctx.act("outcomes.sign_in", act)).text]


async def review_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """outcomes.review: the ledger's review, and what came of the help, in one act."""
    assert ctx.person is not None
    entry_id = int(context["entry_id"])
    entry = (
        await ctx.conn.execute(select(ledger_entries).where(ledger_entries.c.id == entry_id))
    ).first()
    merged = dict(answers)
    sources = outcomes.income_by_source(answers)
    if sources:
        merged["income"] = sum(sources.values())
    text = await ledger.review(
        ctx.conn, entry_id=entry_id, secretary=ctx.person, answers=merged, now=ctx.now
    )
    await outcomes.record_household_outcome(
        ctx.conn, entry=entry, actor=ctx.person, answers=answers, now=ctx.now
    )
    if outcomes.reason_of(answers) == "passed_away" and entry is not None:
        passed_on = date.fromisoformat(str(answers.get("passed_on") or ctx.today.isoformat()))
        text = await outcomes.record_passing(
            ctx.conn, person_id=entry.person_id, passed_on=passed_on, actor=ctx.person, now=ctx.now
        )
    await finish_todo(ctx.conn, int(context["todo_id"]), ctx.now)
    return ActionResult(text)


async def passing_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """outcomes.record_passing: a member of the secretary's branch passed away."""
    assert ctx.person is not None
    name = str(answers["member_name"]).strip()
    found = (
        (
            await ctx.conn.execute(
                select(people.c.id).where(
                    people.c.name == name, people.c.branch_id == ctx.person.branch_id
                )
            )
        )
        .scalars()
        .all()
    )
    if len(found) != 1:
        return ActionResult(outcomes.say("passing_not_found", name=name), stay=True)
    text = await outcomes.record_passing(
        ctx.conn,
        person_id=int(found[0]),
        passed_on=date.fromisoformat(str(answers["passed_on"])),
        actor=ctx.person,
        now=ctx.now,
    )
    return ActionResult(text)


async def open_follow_up(ctx: Context, todo: Any) -> Answer:
    """A follow-up to-do opens the loan's follow-up, unless recorded meanwhile."""
    context = await outcomes.follow_up_context(ctx.conn, int(todo.loan_id))
    if context is None:
        await finish_todo(ctx.conn, todo.id, ctx.now)
        return [say("todo_done_already")]
    context["todo_id"] = todo.id
    return ctx.begin("loan_outcome", context)


async def follow_up_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """outcomes.loan_outcome: earned against expected."""
    horizon = "short" if answers["horizon"] == outcomes.say("horizon_short") else "long"
    text = await outcomes.record_loan_outcome(
        ctx.conn,
        loan_id=int(context["loan_id"]),
        occasion=str(context["occasion"]),
        horizon=horizon,
        expected_fen=int(answers["expected"]),
        earned_fen=int(answers["earned"]),
        note=answers.get("note"),
        actor=ctx.person,
        now=ctx.now,
    )
    await finish_todo(ctx.conn, int(context["todo_id"]), ctx.now)
    return ActionResult(text)


CHAT = Chat(
    words={"year_plan": year_plan, "sign_in": sign_in},
    todos={"loan_outcome": open_follow_up},
    actions={
        "outcomes.review": review_action,
        "outcomes.record_passing": passing_action,
        "outcomes.loan_outcome": follow_up_action,
    },
)
