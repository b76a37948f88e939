"""基金: the fund's figures for the supervision group and the department; 进度: a member's
applications and loans (reading across the cases and the loans, so above both)."""

from __future__ import annotations

from bangfu_bot.cases import service as cases
from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.loans.statement import member_loans
from bangfu_bot.reports.fund import fund_summary


async def fund(ctx: Context) -> Answer:
    """The current figures and the reconciliation line, in one short message."""
    person = ctx.person
    if person is None:
        return [say("need_binding")]
    if not (person.has("supervisor") or person.has("department")):
        return [say("not_allowed", role=say("role_supervisor"))]
    return [await fund_summary(ctx.conn, today=ctx.today)]


async def progress(ctx: Context) -> Answer:
    """进度: the member's applications and where each stands, then their loans: the next
    instalment, its amount and day, what is owed (arrears first); a repaid loan in a line."""
    if ctx.person is None:
        return [say("need_binding")]
    applications = await cases.progress(ctx.conn, person=ctx.person, tz=ctx.tz)
    loans = await member_loans(ctx.conn, person_id=ctx.person.id, today=ctx.today)
    if not loans:
        return [applications]
    parts = [] if applications == cases.say("progress_none") else [applications]
    return ["\n\n".join([*parts, say("progress_loans") + "\n" + "\n\n".join(loans)])]


CHAT = Chat(words={"fund": fund, "progress": progress})
