"""The case procedure's side of the chat: 申请 and 代办, evaluation, report, decision,
filing (one by one and 批量备案), objections, and 进度."""

from __future__ import annotations

from functools import partial
from typing import Any

from bangfu_bot.cases import procedure, record
from bangfu_bot.cases import service as cases
from bangfu_bot.cases.eligibility import Rule
from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.procedure import Rules
from bangfu_bot.cases.transitions import load_case
from bangfu_bot.conversation.bot import say
from bangfu_bot.conversation.engine import ActionResult
from bangfu_bot.conversation.registry import Answer, Chat, Context
from bangfu_bot.members import service as members
from bangfu_bot.todos.service import finish_todo

# A to-do of this kind opens this flow on its case.
TODO_FLOWS = {"report": "report", "approve": "approve", "file": "file"}
# The to-dos whose flow decides on the case: their prompt carries its summary.
DECIDING = {"approve", "file"}


async def case_context(ctx: Context, todo: Any) -> dict[str, Any]:
    """What a case's flows show: whose case, from which branch, and the to-do behind it."""
    case = await load_case(ctx.conn, todo.case_id)
    return {
        "case_id": case.id,
        "todo_id": todo.id,
        "applied_on": case.created_at.astimezone(ctx.tz).date().isoformat(),
        "name": await procedure.member_name(ctx.conn, case),
        "branch": await procedure.branch_name(ctx.conn, case.branch_id),
    }


# --- words -------------------------------------------------------------------------------------


async def notice_running(ctx: Context) -> bool:
    """异议 is offered while a case of the person's branch is on public notice."""
    person = ctx.person
    if person is None or person.branch_id is None:
        return False
    return await procedure.notice_running(ctx.conn, branch_id=person.branch_id)


async def file_all(ctx: Context, *, eligibility: list[Rule]) -> Answer:
    """批量备案: every approved case at once, after one confirmation; each listed on one
    line with what the filing rests on."""
    refusal = await ctx.bot.refusal(ctx, ctx.bot.engine.flows["file_all"])
    if refusal:
        return [refusal]
    busy = ctx.busy()
    if busy:
        return busy
    waiting = await procedure.approved_cases(ctx.conn)
    if not waiting:
        return [cases.say("nothing_to_file")]
    lines = [
        cases.say(
            "numbered",
            n=n,
            text=await record.case_line(ctx.conn, row.id, rules=eligibility, tz=ctx.tz),
        )
        for n, row in enumerate(waiting[: record.LIST_LIMIT], start=1)
    ]
    if len(waiting) > record.LIST_LIMIT:
        lines.append(cases.say("list_more", count=len(waiting) - record.LIST_LIMIT))
    return ctx.begin(
        "file_all",
        {
            "count": len(waiting),
            "names": cases.names_shown(row.name for row in waiting),
            "cases": "\n".join(lines),
        },
    )


# --- to-dos ------------------------------------------------------------------------------------


async def open_case_step(ctx: Context, todo: Any) -> Answer:
    """An evaluation to-do opens the evaluation; a returned case goes back to its step.
    Opening either moves the case: an act, rolled back whole if refused."""
    context = await case_context(ctx, todo)

    async def step() -> ActionResult:
        person = ctx.person
        assert person is not None
        if todo.kind == "evaluate":
            await procedure.start_evaluation(
                ctx.conn, case_id=todo.case_id, secretary=person, now=ctx.now
            )
            return ActionResult("\n\n".join(ctx.begin("evaluate", context)))
        text, target = await procedure.resume_returned(
            ctx.conn, case_id=todo.case_id, secretary=person, now=ctx.now
        )
        if target == "under_evaluation":
            return ActionResult("\n\n".join([text, *ctx.begin("evaluate", context)]))
        await procedure.reopen_for_evaluation(ctx.conn, case_id=todo.case_id, now=ctx.now)
        return ActionResult(text)

    return [(await ctx.act(f"todo:{todo.kind}", step)).text]


async def open_objection(ctx: Context, todo: Any) -> Answer:
    """An objection to-do opens its resolution, unless it was resolved meanwhile."""
    objection = await procedure.open_objection_for(ctx.conn, todo.case_id)
    if objection is None:
        await finish_todo(ctx.conn, todo.id, ctx.now)
        return [say("todo_done_already")]
    context = await case_context(ctx, todo)
    context.update(objection_id=objection.id, text=objection.text)
    return ctx.begin("resolve", context)


async def open_step(ctx: Context, todo: Any, *, eligibility: list[Rule]) -> Answer:
    """上报, 审批, 备案: the flow of that step on the case; those who decide (审批, 备案)
    first read the case's summary."""
    context = await case_context(ctx, todo)
    if todo.kind in DECIDING:
        context["summary"] = await record.case_summary(
            ctx.conn, todo.case_id, rules=eligibility, tz=ctx.tz
        )
    return ctx.begin(TODO_FLOWS[todo.kind], context)


# --- final actions -----------------------------------------------------------------------------


async def apply_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any], *, eligibility: list[Rule]
) -> ActionResult:
    """cases.submit_application: create the case; 代办 when the context names a member."""
    assert ctx.person is not None
    member = ctx.person
    consent = False
    if context.get("subject_id"):
        subject = await members.person_by_id(ctx.conn, int(context["subject_id"]))
        if subject is None or subject.branch_id != ctx.person.branch_id:
            return ActionResult(cases.say("proxy_not_found"))
        member, consent = subject, bool(context.get("consent"))
    filing = cases.Filing(member=member, filer=ctx.person, channel="chat", consent_recorded=consent)
    text = await cases.submit_application(
        ctx.conn, filing=filing, answers=answers, rules=eligibility, now=ctx.now, tz=ctx.tz
    )
    return ActionResult(text)


async def proxy_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """cases.start_proxy: a secretary picks a member of the branch, with consent → apply."""
    assert ctx.person is not None
    if not answers.get("consent"):
        return ActionResult(cases.say("proxy_no_consent"))
    member = await cases.find_member_in_branch(
        ctx.conn, secretary=ctx.person, name=answers["member_name"], id_tail=answers["id_tail"]
    )
    if member is None:
        return ActionResult(cases.say("proxy_not_found"), restart=True)
    return ActionResult(
        cases.say("proxy_start", name=member.name),
        then_flow="apply",
        then_context={"subject_id": member.id, "consent": True},
    )


async def evaluation_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any], *, rules: Rules
) -> ActionResult:
    """cases.record_evaluation. Refusals rise to the router's act, which rolls back."""
    assert ctx.person is not None
    return ActionResult(
        await procedure.record_evaluation(
            ctx.conn,
            case_id=int(context["case_id"]),
            secretary=ctx.person,
            answers=answers,
            rules=rules,
            now=ctx.now,
        )
    )


async def report_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """cases.report."""
    assert ctx.person is not None
    return ActionResult(
        await procedure.report(
            ctx.conn,
            case_id=int(context["case_id"]),
            secretary=ctx.person,
            note=answers.get("note"),
            now=ctx.now,
        )
    )


async def decide_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """cases.decide: approve, or return to the named step with a reason."""
    assert ctx.person is not None
    approve = answers["decision"] == cases.say("choice_approve")
    return_to = None
    if not approve:
        return_to = (
            CaseStatus.SUBMITTED
            if answers.get("return_to") == cases.say("choice_return_to_material")
            else CaseStatus.UNDER_EVALUATION
        )
    return ActionResult(
        await procedure.decide(
            ctx.conn,
            case_id=int(context["case_id"]),
            officer=ctx.person,
            approve=approve,
            return_to=return_to,
            reason=answers.get("reason"),
            now=ctx.now,
        )
    )


async def file_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any], *, rules: Rules
) -> ActionResult:
    """cases.file."""
    assert ctx.person is not None
    return ActionResult(
        await procedure.file_case(
            ctx.conn,
            case_id=int(context["case_id"]),
            staff=ctx.person,
            paired_cadre=answers.get("paired_cadre"),
            channel="chat",
            now=ctx.now,
            rules=rules,
        )
    )


async def objection_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """cases.raise_objection."""
    assert ctx.person is not None
    return ActionResult(
        await procedure.raise_objection(
            ctx.conn, person=ctx.person, name=answers["name"], text=answers["text"], now=ctx.now
        )
    )


async def resolve_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any]
) -> ActionResult:
    """cases.resolve_objection."""
    assert ctx.person is not None
    text = await procedure.resolve_objection(
        ctx.conn,
        objection_id=int(context["objection_id"]),
        secretary=ctx.person,
        resolution=answers["resolution"],
        now=ctx.now,
    )
    await finish_todo(ctx.conn, int(context["todo_id"]), ctx.now)
    return ActionResult(text)


async def file_all_action(
    ctx: Context, answers: dict[str, Any], context: dict[str, Any], *, rules: Rules
) -> ActionResult:
    """cases.file_all (批量备案)."""
    assert ctx.person is not None
    if not answers.get("confirm"):
        return ActionResult(cases.say("file_all_declined"))
    return ActionResult(
        await procedure.file_all(
            ctx.conn, staff=ctx.person, channel="chat", now=ctx.now, rules=rules
        )
    )


def chat(*, rules: Rules, eligibility: list[Rule]) -> Chat:
    """The procedure's chat under the county's rules and eligibility lines."""

    def evaluation_preview(
        answers: dict[str, Any], context: dict[str, Any]
    ) -> tuple[list[str], list[str]]:
        preview = procedure.evaluation_preview(answers, rules)
        return preview.lines, preview.problems

    return Chat(
        words={"file_all": partial(file_all, eligibility=eligibility)},
        offers={"flow:objection": notice_running},
        todos={
            "evaluate": open_case_step,
            "returned": open_case_step,
            "objection": open_objection,
            **dict.fromkeys(TODO_FLOWS, partial(open_step, eligibility=eligibility)),
        },
        actions={
            "cases.submit_application": partial(apply_action, eligibility=eligibility),
            "cases.start_proxy": proxy_action,
            "cases.record_evaluation": partial(evaluation_action, rules=rules),
            "cases.report": report_action,
            "cases.decide": decide_action,
            "cases.file": partial(file_action, rules=rules),
            "cases.raise_objection": objection_action,
            "cases.resolve_objection": resolve_action,
            "cases.file_all": partial(file_all_action, rules=rules),
        },
        previews={"cases.evaluation_preview": evaluation_preview},
    )
