"""The ledger's side of the chat: the yearly review a secretary answers for each household."""

from __future__ import annotations

from typing import Any

from bangfu_bot.cases.chat import case_context
from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.engine import ActionResult
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.ledger import service as ledger
from bangfu_bot.todos.service import finish_todo


async def open_review(ctx: Context, todo: Any) -> Answer:
    """A review to-do opens the review of the household's entry, unless done meanwhile."""
    entry = await ledger.entry_for_review(ctx.conn, todo.case_id)
    if entry is None:
        await finish_todo(ctx.conn, todo.id, ctx.now)
        return [say("todo_done_already")]
    context = await case_context(ctx, todo)
    context.update(ledger.review_context(entry))
    context["todo_id"] = todo.id
    return ctx.begin("review", context)


async def review_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """ledger.review: continue into next year's ledger, or exit with a reason."""
    assert ctx.person is not None
    text = await ledger.review(
        ctx.conn,
        entry_id=int(context["entry_id"]),
        secretary=ctx.person,
        answers=answers,
        now=ctx.now,
    )
    await finish_todo(ctx.conn, int(context["todo_id"]), ctx.now)
    return ActionResult(text)


CHAT = Chat(todos={"review": open_review}, actions={"ledger.review": review_action})
