"""The account holder's own words: 绑定 (a flow, and QR scenes `bind:…`), 解绑, 人工."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.engine import ActionResult, Session
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.members import service as members
from bangfu_bot.notify.intents import Todo, tell_user, write
from bangfu_bot.texts import speaker

tell = speaker("bangfu_bot.accounts")


async def _tell_ended(conn: AsyncConnection, ended: list[tuple[int, str]], now: datetime) -> None:
    """The WeChat users whose binding to the person ended learn it (once per binding)."""
    for binding_id, previous in ended:
        await tell_user(
            conn,
            previous,
            tell("bound_elsewhere"),
            key=f"bound-elsewhere:{binding_id}",
            kind="binding",
            reason="the person was bound from another WeChat user",
            now=now,
        )


async def bind_guard(ctx: Context) -> str | None:
    """绑定 is for those not yet bound, and not while the WeChat user is locked out."""
    if ctx.person is not None:
        return say("already_bound", name=ctx.person.name)
    if await members.binding_locked(ctx.conn, ctx.openid, ctx.now):
        return say("bind_locked")
    return None


async def bind_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """members.bind: name + last six ID characters → binding (five misses lock an hour, for
    the WeChat user and for the name tried); the person's earlier WeChat user is told."""
    bound = await members.try_bind(
        ctx.conn, openid=ctx.openid, name=answers["name"], id_tail=answers["id_tail"], now=ctx.now
    )
    if bound is not None:
        await _tell_ended(ctx.conn, bound.ended, ctx.now)
        ctx.person = bound.person
        # An official binds to work, not to apply: point them at what their roles open.
        official = bool(bound.person.roles - {"member"})
        return ActionResult(
            say("bind_ok_official" if official else "bind_ok", name=bound.person.name)
        )
    if await members.binding_locked(ctx.conn, ctx.openid, ctx.now):
        return ActionResult(say("bind_locked"))
    if await members.name_locked(ctx.conn, answers["name"], ctx.now):
        return ActionResult(say("bind_name_locked"))
    return ActionResult(say("bind_mismatch"), restart=True)


async def bind_by_qr(ctx: Context, ticket: str) -> Answer:
    """A scanned binding QR code (`bind:<ticket>`) binds the scanner, once."""
    if ctx.person is not None:
        return [say("already_bound", name=ctx.person.name)]
    bound = await members.bind_by_ticket(ctx.conn, openid=ctx.openid, scene=ticket, now=ctx.now)
    if bound is None:
        return [say("bind_qr_invalid")]
    await _tell_ended(ctx.conn, bound.ended, ctx.now)
    return [say("bind_qr_ok", name=bound.person.name)]


async def unbind(ctx: Context) -> Answer:
    """解绑: the binding ends (recorded); drafts are dropped with it."""
    if not await members.unbind(ctx.conn, openid=ctx.openid, now=ctx.now):
        return [say("not_bound")]
    ctx.dialogue.current = Session()
    ctx.dialogue.drafts.clear()
    return [say("unbound")]


async def human(ctx: Context) -> Answer:
    """人工: the branch's secretaries get a to-do to phone the member; a flow under way
    carries on."""
    person = ctx.person
    session = ctx.dialogue.current
    flows = ctx.bot.engine.flows
    after = ctx.bot.engine.repeat(session) if session.status == "active" else []
    if person is None:
        return [say("human_no_secretary"), *after]
    secretaries = [
        s for s in await members.secretaries_of(ctx.conn, person.branch_id) if s != person.id
    ]
    if not secretaries:
        return [say("human_no_secretary"), *after]
    where = ""
    if session.status == "active" and session.flow:
        where = say("human_todo_where", title=flows[session.flow].title)
    text = say("human_todo", name=person.name, where=where)
    # One to-do per secretary, each with its own key: a to-do key names one person's to-do.
    await write(
        ctx.conn,
        [
            Todo(
                secretary_id,
                "call_member",
                text,
                f"human:{ctx.message.dedupe_key}:{secretary_id}",
                subject_id=person.id,
            )
            for secretary_id in secretaries
        ],
        now=ctx.now,
    )
    return [say("human_asked"), *after]


async def secretary_to_call(ctx: Context) -> bool:
    """人工 is offered while the person's branch has a secretary to call; not to a secretary,
    who is the one members call (and knows the branch's other secretary)."""
    person = ctx.person
    if person is None or person.has("secretary"):
        return False
    return any(s != person.id for s in await members.secretaries_of(ctx.conn, person.branch_id))


CHAT = Chat(
    words={"unbind": unbind, "human": human},
    offers={"human": secretary_to_call},
    scenes={"bind": bind_by_qr},
    actions={"members.bind": bind_action},
    guards={"bind": bind_guard},
)
