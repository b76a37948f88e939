"""The final actions of the loan flows, and which flow each loan to-do opens."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from bangfu_bot.conversation.engine import ActionResult
from bangfu_bot.loans import prompts
from bangfu_bot.loans import service as loans
from bangfu_bot.loans.models import loans as loan_table

# A to-do of this kind opens this flow, with the loan's details as its context.
TODO_FLOWS = {"loan_review": "loan_review", "loan_inspect": "loan_inspect",
              "loan_guarantee": "loan_guarantee", "loan_disburse": "loan_disburse",
              "loan_confirm": "loan_confirm", "loan_write_off": "loan_write_off"}
SCHEDULES = {"到期一次还清": "bullet", "每年年底还一部分": "yearly",
             "每年还一样多的本金": "equal_principal"}


def _guarded(step: Any) -> Any:
    """A loan step for its answer. A refusal rises to the router's `_act`, which rolls the
    whole step back (the movement included) before answering."""

    async def run(bot: Any, ctx: Any, flow: Any, answers: dict[str, Any],
                  context: dict[str, Any]) -> ActionResult:
        return ActionResult(await step(bot, ctx, answers, context))

    return run


@_guarded
async def apply_loan(bot: Any, ctx: Any, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.apply."""
    loan_id = await loans.apply(ctx.conn, member=ctx.person, amount_fen=int(answers["amount"]),
                                project=str(answers["project"]),
                                earnings=str(answers["earnings"]),
                                schedule_kind=SCHEDULES[str(answers["schedule"])],
                                terms=bot.loan_terms, now=ctx.now)
    await prompts.after(ctx.conn, loan_id=loan_id, now=ctx.now)
    return loans.say("applied", id=loan_id)


@_guarded
async def decide(bot: Any, ctx: Any, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.decide."""
    approve = answers["decision"] == "批准"
    loan = await loans.decide(ctx.conn, loan_id=int(context["loan_id"]), officer=ctx.person,
                              approve=approve, reason=answers.get("reason"), now=ctx.now,
                              expected=context.get("status"))
    await prompts.after(ctx.conn, loan_id=loan.id, now=ctx.now, reason=answers.get("reason"))
    return f"已记下：{loans.say('status_' + loan.status)}。"


@_guarded
async def inspect(bot: Any, ctx: Any, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.inspect."""
    loan = await loans.inspect(ctx.conn, loan_id=int(context["loan_id"]), staff=ctx.person,
                               on=date.fromisoformat(answers["on"]),
                               inspector=str(answers["inspector"]),
                               finding=str(answers["finding"]), passed=bool(answers["passed"]),
                               now=ctx.now, expected=context.get("status"))
    await prompts.after(ctx.conn, loan_id=loan.id, now=ctx.now, reason=str(answers["finding"]))
    return f"已记下：{loans.say('status_' + loan.status)}。"


@_guarded
async def guarantee(bot: Any, ctx: Any, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.guarantee."""
    loan = await loans.guarantee(ctx.conn, loan_id=int(context["loan_id"]), staff=ctx.person,
                                 guarantor=str(answers["guarantor"]),
                                 document=str(answers["document"]), now=ctx.now,
                                 expected=context.get("status"))
    await prompts.after(ctx.conn, loan_id=loan.id, now=ctx.now)
    return f"已记下：{loans.say('status_' + loan.status)}。"


@_guarded
async def record_disbursement(bot: Any, ctx: Any, answers: dict[str, Any],
                              context: dict[str, Any]) -> str:
    """loans.record_disbursement."""
    loan = await loans.record_disbursement(ctx.conn, loan_id=int(context["loan_id"]),
                                           staff=ctx.person, on=date.fromisoformat(answers["on"]),
                                           document=str(answers["document"]), now=ctx.now,
                                 expected=context.get("status"))
    await prompts.after(ctx.conn, loan_id=loan.id, now=ctx.now)
    return "已登记放款，已请另一位同志复核。"


@_guarded
async def confirm_disbursement(bot: Any, ctx: Any, answers: dict[str, Any],
                               context: dict[str, Any]) -> str:
    """loans.confirm_disbursement."""
    if not answers.get("checked"):
        return "请先核对凭证，再来复核。"
    loan_id = int(context["loan_id"])
    await loans.confirm_disbursement(ctx.conn, loan_id=loan_id, staff=ctx.person, now=ctx.now,
                                     expected=context.get("status"))
    await prompts.after(ctx.conn, loan_id=loan_id, now=ctx.now)
    return "已确认放款，基金已支出，还款计划已生成并告诉本人：\n" + await prompts.plan_text(
        ctx.conn, loan_id)


@_guarded
async def repay(bot: Any, ctx: Any, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.repay: find the member's loan being repaid, then record."""
    from bangfu_bot.members.service import find_by_name_and_id_tail

    person_id = await find_by_name_and_id_tail(ctx.conn, str(answers["member_name"]),
                                               str(answers["id_tail"]))
    loan_id = None
    if person_id is not None:
        loan_id = (await ctx.conn.execute(select(loan_table.c.id).where(
            loan_table.c.person_id == person_id, loan_table.c.status == "disbursed"))).scalar()
    if loan_id is None:
        raise loans.LoanRefused("没有找到这个人正在还的借款，请核对姓名和身份证后六位。")
    return await loans.repay(ctx.conn, loan_id=int(loan_id), staff=ctx.person,
                             amount_fen=int(answers["amount"]),
                             paid_on=date.fromisoformat(answers["paid_on"]),
                             receipt=str(answers["receipt"]), now=ctx.now)


@_guarded
async def write_off(bot: Any, ctx: Any, answers: dict[str, Any], context: dict[str, Any]) -> str:
    """loans.write_off."""
    if answers["decision"] != "核销":
        return "好的，不核销，继续催收。"
    return await loans.write_off(ctx.conn, loan_id=int(context["loan_id"]), officer=ctx.person,
                                 reason=str(answers["reason"]),
                                 on=ctx.now.astimezone(bot.tz).date(), now=ctx.now,
                                 expected=context.get("status"))


LOAN_ACTIONS = {
    "loans.apply": apply_loan, "loans.decide": decide, "loans.inspect": inspect,
    "loans.guarantee": guarantee, "loans.record_disbursement": record_disbursement,
    "loans.confirm_disbursement": confirm_disbursement, "loans.repay": repay,
    "loans.write_off": write_off,
}
