"""A case as the one deciding on it reads it: a summary that fits a phone screen (in the
approval, filing and 批量备案 prompts) and the full record (详情).

Plain reads of the case's rows, no writes and no policy: whoever shows them checks first
that the reader may act on the case. Kept here, not in the chat, so the desk can show the
same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.cases.eligibility import Rule, judge, rule_for
from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.models import case_events, evaluations, objections, public_notices
from bangfu_bot.cases.procedure import branch_name, member_name
from bangfu_bot.cases.service import INCOME_FIELDS
from bangfu_bot.cases.transitions import load_case, say, status_name
from bangfu_bot.common.dates import chinese_date, month_day
from bangfu_bot.common.money import yuan
from bangfu_bot.members.models import organisations, people

# How much of an objection, its resolution or a return's reason a summary line quotes.
QUOTE = 24
# How many cases a list (批量备案) shows one by one.
LIST_LIMIT = 20


@dataclass(frozen=True)
class Facts:
    """What the summary and the record both read of one case."""

    case: Any
    name: str
    branch: str
    evaluation: Any
    notice: Any
    objections: list[Any]
    returns: list[Any]
    filer: str


async def _facts(conn: AsyncConnection, case_id: int) -> Facts | None:
    case = await load_case(conn, case_id)
    if case is None:
        return None
    evaluation = (
        await conn.execute(
            select(evaluations)
            .where(evaluations.c.case_id == case_id)
            .order_by(evaluations.c.id.desc())
        )
    ).first()
    notice = (
        await conn.execute(select(public_notices).where(public_notices.c.case_id == case_id))
    ).first()
    raised = (
        await conn.execute(
            select(objections).where(objections.c.case_id == case_id).order_by(objections.c.id)
        )
    ).all()
    returns = (
        await conn.execute(
            select(case_events)
            .where(case_events.c.case_id == case_id, case_events.c.to_status == CaseStatus.RETURNED)
            .order_by(case_events.c.id)
        )
    ).all()
    filer = ""
    if case.filed_by != case.person_id:
        filer = str(
            (await conn.execute(select(people.c.name).where(people.c.id == case.filed_by))).scalar()
            or ""
        )
    return Facts(
        case=case,
        name=await member_name(conn, case),
        branch=await branch_name(conn, case.branch_id),
        evaluation=evaluation,
        notice=notice,
        objections=list(raised),
        returns=list(returns),
        filer=filer,
    )


def _quote(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= QUOTE else text[:QUOTE] + say("record_ellipsis")


async def _line(conn: AsyncConnection, facts: Facts, rules: Sequence[Rule], tz: ZoneInfo) -> str:
    """Household, income per person and the line it is measured against."""
    case = facts.case
    answers = dict(case.answers or {})
    size = int(case.household_size)
    income = int(case.household_income_fen)
    each = yuan(round(income / max(size, 1) / 100) * 100)
    committee = (
        await conn.execute(
            select(organisations.c.name).where(organisations.c.id == case.committee_id)
        )
    ).scalar()
    urban_rural = str(answers.get("urban_rural") or "农村")
    rule = rule_for(
        list(rules),
        year=case.created_at.astimezone(tz).year,
        area=committee,
        urban_rural=urban_rural,
    )
    verdict = judge(
        rule,
        household_income_fen=income,
        household_size=size,
        receives_dibao=answers.get("dibao"),
    )
    flag = say("summary_above") if case.looks_above_line else say("summary_below")
    if verdict.basis == "per_capita":
        return say(
            "summary_income_per_capita",
            size=size,
            income=yuan(income),
            each=each,
            line=yuan(verdict.line_fen or 0),
            flag=flag,
        )
    if verdict.basis == "household":
        return say(
            "summary_income_household",
            size=size,
            income=yuan(income),
            line=yuan(verdict.line_fen or 0),
            flag=flag,
        )
    if verdict.basis == "dibao":
        dibao = say("yes") if answers.get("dibao") else say("no")
        return say("summary_income_dibao", size=size, income=yuan(income), dibao=dibao, flag=flag)
    return say("summary_income", size=size, income=yuan(income), each=each)


def _evaluation_line(evaluation: Any) -> str:
    if evaluation is None:
        return say("summary_no_evaluation")
    return say(
        "summary_evaluation",
        day=month_day(evaluation.meeting_date),
        votes_for=evaluation.votes_for,
        votes_against=evaluation.votes_against,
        abstain=evaluation.abstain,
        present=evaluation.present,
        entitled=evaluation.entitled,
        result=say("result_passed") if evaluation.passed else say("result_failed"),
    )


def _objection_lines(facts: Facts) -> list[str]:
    if facts.notice is None:
        return []
    if not facts.objections:
        return [say("summary_no_objection")]
    lines = [say("summary_objections", count=len(facts.objections))]
    for row in facts.objections:
        if row.resolution:
            lines.append(
                say(
                    "summary_objection_resolved",
                    text=_quote(row.text),
                    resolution=_quote(row.resolution),
                )
            )
        else:
            lines.append(say("summary_objection_open", text=_quote(row.text)))
    return lines


def _flag_lines(facts: Facts) -> list[str]:
    lines = []
    if facts.filer:
        lines.append(say("summary_proxy", filer=facts.filer))
    for row in facts.returns:
        lines.append(say("summary_returned", day=month_day(row.at), reason=_quote(row.reason)))
    return lines


async def case_summary(
    conn: AsyncConnection, case_id: int, *, rules: Sequence[Rule], tz: ZoneInfo
) -> str:
    """The facts a decider needs on one screen: what is asked, the household and its
    income against the line, the evaluation's votes, the objections and how each was
    resolved, and anything unusual (代办, an earlier return)."""
    facts = await _facts(conn, case_id)
    if facts is None:
        return say("refused_no_case")
    case = facts.case
    lines = [
        say("summary_asked", category=case.category, help=case.help_wanted),
        await _line(conn, facts, rules, tz),
        _evaluation_line(facts.evaluation),
        *_objection_lines(facts),
        *_flag_lines(facts),
    ]
    return "\n".join(line if line.startswith(" ") else say("bullet", text=line) for line in lines)


async def case_line(
    conn: AsyncConnection, case_id: int, *, rules: Sequence[Rule], tz: ZoneInfo
) -> str:
    """One line per case for a list (批量备案): who, household and line, votes, objections."""
    facts = await _facts(conn, case_id)
    if facts is None:
        return say("refused_no_case")
    case = facts.case
    size = int(case.household_size)
    each = yuan(round(int(case.household_income_fen) / max(size, 1) / 100) * 100)
    evaluation = facts.evaluation
    votes = (
        say(
            "line_votes",
            votes_for=evaluation.votes_for,
            votes_against=evaluation.votes_against,
            abstain=evaluation.abstain,
        )
        if evaluation is not None
        else say("line_no_votes")
    )
    return say(
        "line_case",
        name=facts.name,
        branch=facts.branch,
        size=size,
        each=each,
        above=say("line_above") if case.looks_above_line else "",
        votes=votes,
        objections=len(facts.objections),
    )


async def case_record(
    conn: AsyncConnection, case_id: int, *, rules: Sequence[Rule], tz: ZoneInfo
) -> str:
    """详情: everything the case holds, in the order it happened (no ID number, no phone)."""
    facts = await _facts(conn, case_id)
    if facts is None:
        return say("refused_no_case")
    case = facts.case
    answers = dict(case.answers or {})
    lines = [
        say(
            "record_header",
            name=facts.name,
            branch=facts.branch,
            case_id=case.id,
            day=chinese_date(case.created_at.astimezone(tz)),
            status=status_name(case.status),
        ),
        say(
            "record_category",
            category=case.category,
            other=answers.get("category_other") or "",
            urban_rural=answers.get("urban_rural") or "",
            dibao=say("yes") if answers.get("dibao") else say("no"),
        ),
        say("record_household_header", size=case.household_size),
        say("record_self", name=facts.name),
    ]
    for member in answers.get("household") or []:
        lines.append(
            say(
                "record_household_member",
                name=member.get("name") or "",
                relation=member.get("relation") or "",
                age=member.get("age") if member.get("age") is not None else "",
                health=member.get("health") or "",
            )
        )
    lines.append(await _line(conn, facts, rules, tz))
    incomes = [
        say(f"record_{field}", amount=yuan(int(answers.get(field) or 0))) for field in INCOME_FIELDS
    ]
    lines.append(say("record_incomes", items=say("record_joiner").join(incomes)))
    lines.append(say("record_situation", text=answers.get("situation") or say("record_none")))
    lines.append(say("record_help", help=case.help_wanted))
    photos = answers.get("photos") or []
    lines.append(say("record_photos", count=len(photos)))
    evaluation = facts.evaluation
    if evaluation is not None:
        lines.append(
            say(
                "record_evaluation",
                day=chinese_date(evaluation.meeting_date),
                entitled=evaluation.entitled,
                present=evaluation.present,
                supervisors=evaluation.supervisors,
                counter=evaluation.counter,
                scrutineer=evaluation.scrutineer,
                votes_for=evaluation.votes_for,
                votes_against=evaluation.votes_against,
                abstain=evaluation.abstain,
                result=say("result_passed") if evaluation.passed else say("result_failed"),
                minutes=evaluation.minutes,
            )
        )
    else:
        lines.append(say("summary_no_evaluation"))
    if facts.notice is not None:
        lines.append(
            say(
                "record_notice",
                start=month_day(facts.notice.starts_on),
                end=month_day(facts.notice.ends_on),
                place=facts.notice.place,
            )
        )
        if not facts.objections:
            lines.append(say("summary_no_objection"))
        for row in facts.objections:
            lines.append(
                say(
                    "record_objection",
                    day=month_day(row.raised_at.astimezone(tz)),
                    text=row.text,
                    resolution=row.resolution or say("record_open"),
                )
            )
    if facts.filer:
        lines.append(say("summary_proxy", filer=facts.filer))
    lines.append(say("record_history_header"))
    events = (
        await conn.execute(
            select(case_events, people.c.name)
            .select_from(case_events.outerjoin(people, people.c.id == case_events.c.actor_id))
            .where(case_events.c.case_id == case_id)
            .order_by(case_events.c.id)
        )
    ).all()
    for row in events:
        lines.append(
            say(
                "record_history_line",
                day=month_day(row.at.astimezone(tz)),
                status=status_name(row.to_status),
                who=row.name or say("record_system"),
                reason=say("record_reason", reason=row.reason) if row.reason else "",
            )
        )
    return "\n".join(lines)
