"""基金: the fund's figures for the supervision group and the department; 登录 and the
login QR scene (`login:…`) of the desk; 进度: a member's
applications and loans (reading across the cases and the loans, so above both); 详情: the full
record of the case or loan the person is deciding on right now.

详情 is shown only inside the flow of a step on that matter, and only to someone the
authority policy lets make that step (the same rule that lets them decide lets them read);
the question they were at is asked again after it. The records themselves are built by
`cases.record` and `loans.record`, so the desk can show the same.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from bangfu_bot.authority import Subject, able
from bangfu_bot.cases import service as cases
from bangfu_bot.cases.eligibility import Rule
from bangfu_bot.cases.record import case_record
from bangfu_bot.cases.transitions import case_subject, load_case
from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.loans.record import loan_record
from bangfu_bot.loans.statement import member_loans
from bangfu_bot.loans.transitions import load_loan, loan_subject
from bangfu_bot.reports import login
from bangfu_bot.reports.fund import fund_summary
from bangfu_bot.texts import speaker

say_here = speaker("bangfu_bot.reports")
tell = say_here


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


# The flows of a step on a case or a loan, and the act each step is (authority table).
CASE_FLOWS = {
    "evaluate": "case.record_evaluation",
    "resolve": "objection.resolve",
    "report": "case.report",
    "approve": "case.decide",
    "file": "case.file",
}
LOAN_FLOWS = {
    "loan_review": "loan.decide",
    "loan_inspect": "loan.inspect",
    "loan_guarantee": "loan.guarantee",
    "loan_disburse": "loan.record_disbursement",
    "loan_confirm": "loan.confirm_disbursement",
    "loan_write_off": "loan.write_off",
}


async def details(ctx: Context, *, eligibility: list[Rule]) -> Answer:
    """The record of the matter under way, then its question again."""
    person = ctx.person
    if person is None:
        return [say("need_binding")]
    session = ctx.dialogue.current
    flow = session.flow or ""
    context: dict[str, Any] = session.state.get("context", {}) if session.status == "active" else {}
    subject: Subject | None = None
    if flow in CASE_FLOWS and context.get("case_id"):
        case = await load_case(ctx.conn, int(context["case_id"]))
        act = CASE_FLOWS[flow]
        subject = await case_subject(ctx.conn, case) if case is not None else None
        shown = partial(case_record, ctx.conn, int(context["case_id"]), rules=eligibility)
    elif flow in LOAN_FLOWS and context.get("loan_id"):
        loan = await load_loan(ctx.conn, int(context["loan_id"]))
        act = LOAN_FLOWS[flow]
        subject = loan_subject(loan) if loan is not None else None
        shown = partial(loan_record, ctx.conn, int(context["loan_id"]), today=ctx.today)
    if subject is None:
        return [say_here("details_none")]
    if able(act, person, subject) is None:
        return [say_here("details_refused"), *ctx.bot.engine.repeat(session)]
    return [await shown(tz=ctx.tz), *ctx.bot.engine.repeat(session)]


def details_chat(*, eligibility: list[Rule]) -> Chat:
    """详情 under the county's eligibility lines (the record quotes the line)."""
    return Chat(words={"details": partial(details, eligibility=eligibility)})


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


CHAT = Chat(
    words={"fund": fund, "progress": progress, "desk_login": login_code},
    scenes={"login": login_by_qr},
)
