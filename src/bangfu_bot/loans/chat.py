"""The loans' side of the chat: the final actions of the loan flows, and which flow each
loan to-do opens (a guarantor-call to-do only shows whom to call)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy import select

from bangfu_bot.conversation.engine import ActionResult
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.loans import prompts, record
from bangfu_bot.loans import service as loans
from bangfu_bot.loans.models import loans as loan_table
from bangfu_bot.loans.service import Terms
from bangfu_bot.loans.statement import open_loan_refusal
from bangfu_bot.members.service import find_by_name_and_id_tail
from bangfu_bot.todos.service import finish_todo

# A to-do of this kind opens this flow, with the loan's details as its context.
TODO_FLOWS = {
    "loan_review": "loan_review",
    "loan_inspect": "loan_inspect",
    "loan_guarantee": "loan_guarantee",
    "loan_disburse": "loan_disburse",
    "loan_confirm": "loan_confirm",
    "loan_write_off": "loan_write_off",
}
# The to-dos whose flow decides on the loan: their prompt carries its summary.
DECIDING = {"loan_review"}
# The repayment choices of loan.toml (their words live in messages.toml) → schedule kinds.
SCHEDULES = {
    "schedule_bullet": "bullet",
    "schedule_yearly": "yearly",
    "schedule_equal_principal": "equal_principal",
}

Step = Callable[..., Awaitable[str]]


def _answered(step: Step) -> Callable[..., Awaitable[ActionResult]]:
    """A loan step for its answer. A refusal rises to the router's act, which rolls the
    whole step back (the movement included) before answering."""

    async def run(
        ctx: Context, answers: dict[str, Any], context: dict[str, Any], **config: Any
    ) -> ActionResult:
        return ActionResult(await step(ctx, answers, context, **config))

    run.__doc__ = step.__doc__
    return run


def _schedule(choice: str) -> str:
    for key, kind in SCHEDULES.items():
        if loans.say(key) == choice:
            return kind
    raise ValueError(f"no repayment schedule is called {choice!r}")


@_answered
async def apply_loan(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any], *, terms: Terms
) -> str:
    """loans.apply."""
    assert ctx.person is not None
    loan_id = await loans.apply(
        ctx.conn,
        member=ctx.person,
        amount_fen=int(answers["amount"]),
        project=str(answers["project"]),
        earnings=str(answers["earnings"]),
        schedule_kind=_schedule(str(answers["schedule"])),
        terms=terms,
        now=ctx.now,
    )
    await prompts.after(ctx.conn, actor_id=ctx.person.id, loan_id=loan_id, now=ctx.now)
    return loans.say("applied", id=loan_id)


@_answered
async def decide(ctx: Context, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.decide."""
    assert ctx.person is not None
    approve = answers["decision"] == loans.say("choice_approve")
    loan = await loans.decide(
        ctx.conn,
        loan_id=int(context["loan_id"]),
        officer=ctx.person,
        approve=approve,
        reason=answers.get("reason"),
        now=ctx.now,
        expected=context.get("status"),
    )
    await prompts.after(
        ctx.conn, actor_id=ctx.person.id, loan_id=loan.id, now=ctx.now, reason=answers.get("reason")
    )
    return loans.recorded(loan.status)


@_answered
async def inspect(ctx: Context, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.inspect."""
    assert ctx.person is not None
    loan = await loans.inspect(
        ctx.conn,
        loan_id=int(context["loan_id"]),
        staff=ctx.person,
        on=date.fromisoformat(answers["on"]),
        inspector=str(answers["inspector"]),
        finding=str(answers["finding"]),
        passed=bool(answers["passed"]),
        now=ctx.now,
        expected=context.get("status"),
    )
    await prompts.after(
        ctx.conn,
        actor_id=ctx.person.id,
        loan_id=loan.id,
        now=ctx.now,
        reason=str(answers["finding"]),
    )
    return loans.recorded(loan.status)


@_answered
async def guarantee(ctx: Context, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.guarantee."""
    assert ctx.person is not None
    loan = await loans.guarantee(
        ctx.conn,
        loan_id=int(context["loan_id"]),
        staff=ctx.person,
        guarantor=str(answers["guarantor"]),
        document=str(answers["document"]),
        now=ctx.now,
        expected=context.get("status"),
    )
    await prompts.after(ctx.conn, actor_id=ctx.person.id, loan_id=loan.id, now=ctx.now)
    return loans.recorded(loan.status)


@_answered
async def record_disbursement(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> str:
    """loans.record_disbursement."""
    assert ctx.person is not None
    loan = await loans.record_disbursement(
        ctx.conn,
        loan_id=int(context["loan_id"]),
        staff=ctx.person,
        on=date.fromisoformat(answers["on"]),
        document=str(answers["document"]),
        now=ctx.now,
        expected=context.get("status"),
    )
    await prompts.after(ctx.conn, actor_id=ctx.person.id, loan_id=loan.id, now=ctx.now)
    return loans.say("disbursement_recorded")


@_answered
async def confirm_disbursement(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> str:
    """loans.confirm_disbursement."""
    assert ctx.person is not None
    if not answers.get("checked"):
        return loans.say("check_documents_first")
    loan_id = int(context["loan_id"])
    await loans.confirm_disbursement(
        ctx.conn, loan_id=loan_id, staff=ctx.person, now=ctx.now, expected=context.get("status")
    )
    await prompts.after(ctx.conn, actor_id=ctx.person.id, loan_id=loan_id, now=ctx.now)
    return loans.say("disbursement_confirmed") + "\n" + await prompts.plan_text(ctx.conn, loan_id)


@_answered
async def repay(ctx: Context, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.repay: find the member's loan being repaid, then record."""
    assert ctx.person is not None
    person_id = await find_by_name_and_id_tail(
        ctx.conn, str(answers["member_name"]), str(answers["id_tail"])
    )
    loan_id = None
    if person_id is not None:
        loan_id = (
            await ctx.conn.execute(
                select(loan_table.c.id).where(
                    loan_table.c.person_id == person_id, loan_table.c.status == "disbursed"
                )
            )
        ).scalar()
    if loan_id is None:
        raise loans.LoanRefused(loans.say("repayment_loan_not_found"))
    receipt = str(answers["receipt"])
    text = await loans.repay(
        ctx.conn,
        loan_id=int(loan_id),
        staff=ctx.person,
        amount_fen=int(answers["amount"]),
        paid_on=date.fromisoformat(answers["paid_on"]),
        receipt=receipt,
        now=ctx.now,
    )
    await prompts.after_repayment(
        ctx.conn, loan_id=int(loan_id), receipt=receipt, text=text, now=ctx.now
    )
    return text


@_answered
async def write_off(ctx: Context, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.write_off."""
    assert ctx.person is not None
    if answers["decision"] != loans.say("choice_write_off"):
        return loans.say("write_off_declined")
    return await loans.write_off(
        ctx.conn,
        loan_id=int(context["loan_id"]),
        officer=ctx.person,
        reason=str(answers["reason"]),
        on=ctx.today,
        now=ctx.now,
        expected=context.get("status"),
    )


async def open_loan_step(ctx: Context, todo: Any) -> Answer:
    """A loan to-do opens its step's flow with the loan's details; the committee's review
    first reads the loan's summary."""
    context = await prompts.loan_context(ctx.conn, int(todo.loan_id))
    if todo.kind in DECIDING:
        context["summary"] = await record.loan_summary(ctx.conn, int(todo.loan_id), today=ctx.today)
    return ctx.begin(TODO_FLOWS[todo.kind], context)


async def show_guarantor_call(ctx: Context, todo: Any) -> Answer:
    """A guarantor-call to-do says whom to call; opening it ends it."""
    await finish_todo(ctx.conn, todo.id, ctx.now)
    return [todo.text]


async def loan_guard(ctx: Context, *, terms: Terms) -> str | None:
    """借款 with a loan still open is refused before the first question, with what is owed
    and what to do (unless the county allows a second loan)."""
    if ctx.person is None or terms.allow_second_loan:
        return None
    return await open_loan_refusal(ctx.conn, person_id=ctx.person.id, today=ctx.today)


def chat(*, terms: Terms) -> Chat:
    """The loans' chat under the county's loan terms."""
    return Chat(
        guards={"loan": partial(loan_guard, terms=terms)},
        todos={**dict.fromkeys(TODO_FLOWS, open_loan_step), "guarantor_call": show_guarantor_call},
        actions={
            "loans.apply": partial(apply_loan, terms=terms),
            "loans.decide": decide,
            "loans.inspect": inspect,
            "loans.guarantee": guarantee,
            "loans.record_disbursement": record_disbursement,
            "loans.confirm_disbursement": confirm_disbursement,
            "loans.repay": repay,
            "loans.write_off": write_off,
        },
    )
