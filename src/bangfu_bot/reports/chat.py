"""基金: the fund's figures; 登录 and the login QR scene (`login:…`) of the desk."""

from __future__ import annotations

from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.reports import login
from bangfu_bot.reports.fund import fund_summary
from bangfu_bot.texts import speaker

tell = speaker("bangfu_bot.reports")


async def fund(ctx: Context) -> Answer:
    """The current figures and the reconciliation line, in one short message."""
    person = ctx.person
    if person is None:
        return [say("need_binding")]
    if not (person.has("supervisor") or person.has("department")):
        return [say("not_allowed", role=say("role_supervisor"))]
    return [await fund_summary(ctx.conn, today=ctx.today)]


async def login_by_qr(ctx: Context, scene: str) -> Answer:
    """A scanned desk login QR code (`login:<scene>`) logs its page in as the scanner."""
    outcome = await login.scan_scene(
        ctx.conn, scene=scene, openid=ctx.openid, person=ctx.person, now=ctx.now
    )
    if outcome == "unbound":
        return [say("need_binding")]
    if outcome == "not_allowed":
        return [tell("desk_not_for_you")]
    if outcome == "used":
        return [tell("desk_scene_used")]
    time = ctx.now.astimezone(ctx.tz).strftime("%H:%M")
    return [tell("desk_scanned", time=time)]


async def login_code(ctx: Context) -> Answer:
    """登录: six digits to type on the desk's login page (five minutes, five tries)."""
    if ctx.person is None:
        return [say("need_binding")]
    code = await login.issue_code(ctx.conn, person=ctx.person, openid=ctx.openid, now=ctx.now)
    if code is None:
        return [tell("desk_not_for_you")]
    return [tell("desk_code", code=code, minutes=int(login.CODE_LIFE.total_seconds() // 60))]


CHAT = Chat(words={"fund": fund, "desk_login": login_code}, scenes={"login": login_by_qr})
