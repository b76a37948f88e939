"""The yearly review of the ledger (每年审核调整一次): continue into next year, or exit."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.authority import Subject, acting_role, check
from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.transitions import TransitionRefused, case_subject, load_case, transition
from bangfu_bot.common.fields import clause
from bangfu_bot.common.money import yuan
from bangfu_bot.ledger.models import ledger_entries
from bangfu_bot.members.models import people
from bangfu_bot.members.service import Officials, Person, person_by_id, secretaries_of
from bangfu_bot.notify.intents import add_todo
from bangfu_bot.texts import speaker

say = speaker("bangfu_bot.ledger")


def review_opens_on(year: int, month_day: str) -> date:
    """The first day of the yearly review (default 1 December)."""
    month, day = (int(part) for part in month_day.split("-"))
    return date(year, month, day)


async def open_reviews(
    conn: AsyncConnection, *, now: datetime, tz: ZoneInfo, month_day: str
) -> int:
    """Scheduled: from the review date on, give each secretary a review to-do per active
    ledger member of the branch (once per entry; a restart only catches up)."""
    today = now.astimezone(tz).date()
    if today < review_opens_on(today.year, month_day):
        return 0
    rows = (
        await conn.execute(
            select(
                ledger_entries.c.id,
                ledger_entries.c.case_id,
                ledger_entries.c.person_id,
                people.c.name,
                people.c.branch_id,
            )
            .select_from(ledger_entries.join(people, people.c.id == ledger_entries.c.person_id))
            .where(
                ledger_entries.c.year == today.year,
                ledger_entries.c.status == "active",
                ledger_entries.c.review_opened_at.is_(None),
            )
        )
    ).all()
    if not rows:
        return 0
    # Who may review is read once for every entry (not each candidate for each entry).
    officials = await Officials.load(conn, "case.review")
    for row in rows:
        for secretary_id in officials.able_for(await _subject(conn, row.case_id, row.person_id)):
            await add_todo(
                conn,
                assignee_id=secretary_id,
                kind="review",
                text=say("review_todo", name=row.name, year=today.year),
                now=now,
                subject_id=row.person_id,
                case_id=row.case_id,
                key=f"review:{row.id}:{secretary_id}",
            )
        await conn.execute(
            update(ledger_entries).where(ledger_entries.c.id == row.id).values(review_opened_at=now)
        )
    return len(rows)


async def _subject(conn: AsyncConnection, case_id: int | None, person_id: int) -> Subject:
    """A ledger entry's matter: its case's, or (an entry without a case) its member's."""
    if case_id is not None:
        case = await load_case(conn, case_id)
        if case is not None:
            return await case_subject(conn, case)
    person = await person_by_id(conn, person_id)
    branch = person.branch_id if person else None
    return Subject(
        person_id=person_id,
        branch_id=branch,
        committee_id=person.committee_id if person else None,
        secretaries=frozenset(await secretaries_of(conn, branch)),
    )


async def entry_for_review(conn: AsyncConnection, case_id: int) -> Any:
    """The active entry opened by this case that awaits its review."""
    return (
        await conn.execute(
            select(ledger_entries)
            .where(
                ledger_entries.c.case_id == case_id,
                ledger_entries.c.status == "active",
                ledger_entries.c.reviewed_at.is_(None),
            )
            .order_by(ledger_entries.c.year.desc())
        )
    ).first()


def review_context(entry: Any) -> dict[str, Any]:
    """What the review flow shows of last year's entry."""
    last = say(
        "review_last",
        category=entry.category,
        size=entry.household_size,
        income=yuan(entry.annual_income_fen),
    )
    return {"entry_id": entry.id, "last": last, "income": yuan(entry.annual_income_fen)}


async def review(
    conn: AsyncConnection,
    *,
    entry_id: int,
    secretary: Person,
    answers: dict[str, Any],
    now: datetime,
) -> str:
    """Record the review: a new entry for next year, or an exit (the case is exited too)."""
    entry = (
        await conn.execute(select(ledger_entries).where(ledger_entries.c.id == entry_id))
    ).first()
    if entry is None or entry.reviewed_at is not None:
        raise TransitionRefused(say("review_done_already"), "entry already reviewed")
    subject = await _subject(conn, entry.case_id, entry.person_id)
    check(
        TransitionRefused,
        "case.review",
        secretary,
        acting_role("case.review", secretary, subject),
        subject,
    )
    claimed = await conn.execute(
        update(ledger_entries)
        .where(ledger_entries.c.id == entry_id, ledger_entries.c.reviewed_at.is_(None))
        .values(reviewed_at=now)
    )
    if claimed.rowcount != 1:
        raise TransitionRefused(say("review_done_already"), "entry reviewed concurrently")
    name = (
        await conn.execute(select(people.c.name).where(people.c.id == entry.person_id))
    ).scalar_one()
    if answers["outcome"] == say("choice_exit"):
        reason = str(answers["exit_reason"])
        if entry.case_id is not None:
            await transition(
                conn,
                case_id=entry.case_id,
                target=CaseStatus.EXITED,
                actor=secretary,
                channel="chat",
                now=now,
                reason=reason,
                expected=CaseStatus.IN_LEDGER,
            )
        await conn.execute(
            update(ledger_entries)
            .where(ledger_entries.c.id == entry_id)
            .values(status="exited", exit_reason=reason, exited_at=now)
        )
        return say("review_exited", name=name, reason=clause(reason))
    income = answers.get("income")
    situation = answers.get("situation")
    await conn.execute(
        insert(ledger_entries).values(
            person_id=entry.person_id,
            year=entry.year + 1,
            case_id=entry.case_id,
            category=entry.category,
            causes=entry.causes,
            household=entry.household,
            household_size=entry.household_size,
            annual_income_fen=entry.annual_income_fen if income is None else int(income),
            situation=entry.situation if situation is None else str(situation),
            paired_cadre=entry.paired_cadre,
            assistance=[],
            status="active",
            created_at=now,
        )
    )
    return say("review_continued", name=name, year=entry.year + 1)
