"""基金: the fund's figures for the supervision group and the department."""

from __future__ import annotations

from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.reports.fund import fund_summary


async def fund(ctx: Context) -> Answer:
    """The current figures and the reconciliation line, in one short message."""
    person = ctx.person
    if person is None:
        return [say("need_binding")]
    if not (person.has("supervisor") or person.has("department")):
        return [say("not_allowed", role=say("role_supervisor"))]
    return [await fund_summary(ctx.conn, today=ctx.today)]


CHAT = Chat(words={"fund": fund})
