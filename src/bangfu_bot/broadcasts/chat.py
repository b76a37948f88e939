"""The notices' side of the chat: 通知 (a flow), 报名, 报名情况, 发送情况, and WeChat's
receipt of a mass send."""

from __future__ import annotations

from typing import Any

from bangfu_bot.broadcasts import service as broadcasts
from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.engine import ActionResult, Checked
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.notify.outbox import say as say_outbox
from bangfu_bot.notify.outbox import status_counts

# The audience choices of notice.toml (their words live in messages.toml) → audience kinds;
# a place, where one is asked, follows the colon.
AUDIENCES = {
    "choice_everyone": "everyone",
    "choice_township": "township:",
    "choice_branch": "branch:",
    "choice_secretaries": "role:secretary",
    "choice_category": "category:",
}
STATUSES = (
    "sent",
    "delivered",
    "escalated",
    "pending",
    "undeliverable",
    "unknown",
    "unknown_escalated",
    "failed",
)


def audience_of(choice: str, place: str) -> str:
    """The audience a notice's answers name."""
    for key, kind in AUDIENCES.items():
        if broadcasts.say(key) == choice:
            return f"{kind}{place}" if kind.endswith(":") else kind
    raise ValueError(f"no audience is called {choice!r}")


def _department_only(ctx: Context) -> Answer | None:
    if ctx.person is None:
        return [say("need_binding")]
    if not (ctx.person.has("department") or ctx.person.has("supervisor")):
        return [say("not_allowed", role=say("role_department"))]
    return None


async def sign_up(ctx: Context) -> Answer:
    """报名: the member signs up for the latest training notice."""
    if ctx.person is None:
        return [say("need_binding")]
    return [await broadcasts.sign_up(ctx.conn, person_id=ctx.person.id, now=ctx.now)]


async def training_open(ctx: Context) -> bool:
    """报名 is offered while a training notice the person received is open."""
    if ctx.person is None:
        return False
    return await broadcasts.training_open(ctx.conn, person_id=ctx.person.id, now=ctx.now)


async def signups(ctx: Context) -> Answer:
    """报名情况: who signed up, for the department and the supervision group."""
    return _department_only(ctx) or [await broadcasts.signup_list(ctx.conn)]


async def delivery_status(ctx: Context) -> Answer:
    """发送情况: messages by delivery status, and the latest notice's report."""
    refused = _department_only(ctx)
    if refused:
        return refused
    counts = await status_counts(ctx.conn)
    lines = [broadcasts.say("status_header")]
    for status in STATUSES:
        if counts.get(status):
            label = (
                say_outbox(f"status_{status}")
                if status == "unknown_escalated"
                else say(f"outbox_{status}")
            )
            lines.append(broadcasts.say("status_line", label=label, count=counts[status]))
    latest = await broadcasts.latest_report(ctx.conn, ctx.tz)
    return ["\n".join([*lines, latest] if latest else lines)]


async def mass_finished(ctx: Context) -> Answer | None:
    """WeChat's report of a mass send: recorded, nothing answered."""
    fields = ctx.message.fields
    await broadcasts.mass_finished(
        ctx.conn,
        msg_id=str(fields.get("MsgID", "")),
        sent=_int(fields.get("SentCount")),
        errors=_int(fields.get("ErrorCount")),
    )
    return None


async def broadcast_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """broadcasts.send: queue the notice for its audience (the dispatcher mass-sends it)."""
    assert ctx.person is not None
    audience = audience_of(str(answers["audience"]), str(answers.get("place") or ""))
    broadcast_id, count = await broadcasts.create(
        ctx.conn,
        author=ctx.person,
        text=str(answers["text"]),
        audience=audience,
        training=bool(answers.get("training")),
        now=ctx.now,
        tz=ctx.tz,
    )
    return ActionResult(broadcasts.say("queued", id=broadcast_id, count=count))


async def check_audience(
    ctx: Context, step_id: str, answers: dict[str, Any], context: dict[str, Any]
) -> Checked:
    """Right after the audience (and its place) is named: does it name anyone, and how many
    of them can a notice reach. An audience that needs a place waits for the place."""
    choice = str(answers.get("audience") or "")
    needs_place = next(
        (kind.endswith(":") for key, kind in AUDIENCES.items() if broadcasts.say(key) == choice),
        False,
    )
    if step_id == "audience" and needs_place:
        return Checked()
    audience = audience_of(choice, str(answers.get("place") or "") if needs_place else "")
    try:
        counted = await broadcasts.reach(ctx.conn, audience, year=ctx.today.year)
    except broadcasts.AudienceError as refused:
        return Checked(refusal=refused.message)
    shown = (
        broadcasts.say("reach_everyone")
        if audience == "everyone"
        else broadcasts.describe(audience)
    )
    if counted.bound == 0:
        return Checked(
            refusal=broadcasts.say("reach_none", audience=shown, everyone=counted.everyone)
        )
    if counted.bound == counted.everyone:
        note = broadcasts.say("reach_all", audience=shown, bound=counted.bound)
    else:
        note = broadcasts.say(
            "reach_part",
            audience=shown,
            everyone=counted.everyone,
            bound=counted.bound,
            unbound=counted.everyone - counted.bound,
        )
    return Checked(note=note, remember={"reach": note})


def notice_preview(answers: dict[str, Any], context: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The notice's summary ends with who it reaches and what they will read, exactly."""
    lines = [str(context["reach"])] if context.get("reach") else []
    if answers.get("training"):
        body = broadcasts.body_of(str(answers.get("text") or ""), training=True)
        lines.append(broadcasts.say("preview_training", body=body))
    else:
        lines.append(broadcasts.say("preview_same"))
    return lines, []


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


CHAT = Chat(
    words={"sign_up": sign_up, "signups": signups, "delivery_status": delivery_status},
    events={"masssendjobfinish": mass_finished},
    offers={"sign_up": training_open},
    actions={"broadcasts.send": broadcast_action},
    previews={"broadcasts.notice_preview": notice_preview},
    checks={"broadcasts.audience": check_audience},
)
