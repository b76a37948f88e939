"""Submitting applications, 代办 for a member, and 进度 (progress)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.authority import Subject, check
from bangfu_bot.cases.eligibility import Rule, Verdict, judge, rule_for
from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.models import case_events, cases
from bangfu_bot.cases.procedure import hands
from bangfu_bot.cases.transitions import TransitionRefused, load_case
from bangfu_bot.common.dates import month_day
from bangfu_bot.common.money import yuan
from bangfu_bot.dbutil import inserted_id
from bangfu_bot.members.service import (
    Person,
    find_by_name_and_id_tail,
    person_by_id,
)
from bangfu_bot.notify.intents import add_todo, tell
from bangfu_bot.texts import speaker

INCOME_FIELDS = (
    "income_farming",
    "income_wages",
    "income_allowances",
    "income_pension",
    "income_other",
)


say = speaker("bangfu_bot.cases")


@dataclass(frozen=True)
class Filing:
    """Who files an application for whom, through which channel."""

    member: Person
    filer: Person
    channel: str
    consent_recorded: bool


async def submit_application(
    conn: AsyncConnection,
    *,
    filing: Filing,
    answers: dict[str, Any],
    rules: list[Rule],
    now: datetime,
    tz: ZoneInfo,
) -> str:
    """Create the case in `submitted`, tell the branch secretary, and answer the filer."""
    role = "member" if filing.filer.id == filing.member.id else "secretary"
    check(
        TransitionRefused,
        "case.apply",
        filing.filer,
        role,
        Subject(
            person_id=filing.member.id,
            branch_id=filing.member.branch_id,
            committee_id=filing.member.committee_id,
        ),
    )
    household = answers.get("household") or []
    size = 1 + len(household)
    income = sum(int(answers.get(name) or 0) for name in INCOME_FIELDS)
    urban_rural = answers.get("urban_rural") or filing.member.urban_rural or "农村"
    rule = rule_for(
        rules,
        year=now.astimezone(tz).year,
        area=filing.member.committee_name,
        urban_rural=urban_rural,
    )
    verdict = judge(
        rule, household_income_fen=income, household_size=size, receives_dibao=answers.get("dibao")
    )
    category = str(answers.get("category", ""))
    result = await conn.execute(
        insert(cases).values(
            person_id=filing.member.id,
            branch_id=filing.member.branch_id,
            kind="hardship",
            status=CaseStatus.SUBMITTED,
            category=category,
            help_wanted=str(answers.get("help_wanted", "")),
            household_size=size,
            household_income_fen=income,
            looks_above_line=verdict.above,
            answers=answers,
            filed_by=filing.filer.id,
            consent_recorded=filing.consent_recorded,
            created_at=now,
            updated_at=now,
        )
    )
    case_id = inserted_id(result)
    await conn.execute(
        insert(case_events).values(
            case_id=case_id,
            actor_id=filing.filer.id,
            role=role,
            channel=filing.channel,
            at=now,
            from_status=None,
            to_status=CaseStatus.SUBMITTED,
            reason=say("reason_proxy") if role == "secretary" else None,
        )
    )
    await _tell_secretaries(conn, filing, case_id, category, answers, now)
    replies = []
    if role == "secretary":
        replies.append(say("submitted_for", name=filing.member.name, case_id=case_id))
        await tell(
            conn,
            filing.member.id,
            say("member_told_of_proxy", secretary=filing.filer.name, case_id=case_id),
            key=f"case:{case_id}:proxy",
            now=now,
            reason="application filed by the secretary",
        )
    else:
        replies.append(say("submitted", case_id=case_id))
    if verdict.above and verdict.line_fen is not None:
        replies.append(above_line(verdict, income, size))
    return "\n\n".join(replies)


def above_line(verdict: Verdict, income_fen: int, size: int) -> str:
    """The reminder that the household looks above the line, saying whether the line is per
    person or per household (and so what was compared with it)."""
    line = yuan(verdict.line_fen or 0)
    if verdict.basis == "per_capita":
        each = yuan(round(income_fen / max(size, 1) / 100) * 100)
        return say(
            "above_line_per_capita", income=yuan(income_fen), size=size, each=each, line=line
        )
    return say("above_line_household", income=yuan(income_fen), line=line)


async def _tell_secretaries(
    conn: AsyncConnection,
    filing: Filing,
    case_id: int,
    category: str,
    answers: dict[str, Any],
    now: datetime,
) -> None:
    reason = str(answers.get("situation") or answers.get("category_other") or "")
    reason = reason if len(reason) <= 40 else reason[:39] + "…"
    text = say(
        "new_application",
        name=filing.member.name,
        category=category,
        reason=say("new_application_reason", reason=reason) if reason else "",
    )
    # The filing secretary convenes the evaluation like any other (filing for someone is not
    # acting on one's own case); a branch whose only secretary is the member hands it to the
    # township's officers.
    case = await load_case(conn, case_id)
    for secretary_id in await hands(conn, "case.open_evaluation", case):
        await add_todo(
            conn,
            assignee_id=secretary_id,
            kind="evaluate",
            text=text,
            now=now,
            subject_id=filing.member.id,
            case_id=case_id,
            key=f"case:{case_id}:evaluate:{secretary_id}",
            # The secretary filing 代办 is in the chat now: the to-do, but no push.
            push=secretary_id != filing.filer.id,
        )


async def find_member_in_branch(
    conn: AsyncConnection, *, secretary: Person, name: str, id_tail: str
) -> Person | None:
    """A member of the secretary's own branch, by name and the last 6 ID characters."""
    person_id = await find_by_name_and_id_tail(conn, name, id_tail)
    if person_id is None:
        return None
    member = await person_by_id(conn, person_id)
    if member is None or member.branch_id != secretary.branch_id:
        return None
    return member


async def progress(conn: AsyncConnection, *, person: Person, tz: ZoneInfo) -> str:
    """进度: the member's cases and where each stands."""
    rows = (
        await conn.execute(select(cases).where(cases.c.person_id == person.id).order_by(cases.c.id))
    ).all()
    if not rows:
        return say("progress_none")
    lines = [say("progress_header")]
    for n, row in enumerate(rows, start=1):
        day = row.created_at.astimezone(tz)
        lines.append(
            say(
                "progress_item",
                n=n,
                title=say("progress_application"),
                day=month_day(day),
                status=say(f"status_{row.status}"),
            )
        )
    return "\n".join(lines)


def names_shown(names: Iterable[str], limit: int = 10) -> str:
    """王琼翠、李长贵 … at most `limit` names, then 等."""
    listed = list(names)
    shown = say("names_joiner").join(listed[:limit])
    return shown + (say("names_more") if len(listed) > limit else "")
