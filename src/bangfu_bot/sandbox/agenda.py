"""「到下一件事」: when the next scheduled thing happens, worked out from the data.

What the scheduled jobs will do, and on which day: a public notice ends (closed the day after
its last day), a loan's repayment reminders (30, 7 and 1 days before an instalment, on its
day, then 1, 7 and 30 days overdue, and the guarantor call), a visit campaign's reminders,
its not-visited list and its deadline, the yearly review of the ledger, and messages waiting
in the outbox for the morning or a retry. The sandbox moves its clock to the earliest of
them and runs the jobs, as for any other step; this module only finds it.

A day's thing is reached at the present time of day on that day, so the step is whole days
and the clock reads as before; a waiting message is reached at the minute it goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.cases.enums import CaseStatus
from bangfu_bot.cases.models import cases, ledger_entries, objections, public_notices
from bangfu_bot.common.dates import month_day
from bangfu_bot.ledger.service import review_opens_on
from bangfu_bot.loans.enums import LoanStatus
from bangfu_bot.loans.jobs import AFTER, BEFORE
from bangfu_bot.loans.models import instalments, loans, repayments
from bangfu_bot.members.models import people
from bangfu_bot.notify.models import outbox
from bangfu_bot.texts import speaker
from bangfu_bot.visits.enums import Occasion
from bangfu_bot.visits.models import visit_campaigns, visits
from bangfu_bot.visits.service import Rules as VisitRules

say = speaker("bangfu_bot.sandbox")
# Several things on the same day: the first few are named.
NAMED = 3
# Notes a thing on a day (kept only when the day is after today).
Found = Callable[[date, str], None]


@dataclass(frozen=True)
class Thing:
    """Something the jobs will do, and when."""

    at: datetime
    what: str


@dataclass(frozen=True)
class Agenda:
    """What the schedule depends on besides the data (the county's settings)."""

    tz: ZoneInfo
    review_opens: str = "12-01"  # MM-DD
    guarantor_call_days: int = 30
    watch_days: int = VisitRules.watch_days


async def next_thing(conn: AsyncConnection, *, now: datetime, agenda: Agenda) -> Thing | None:
    """The earliest thing after `now` (several on one instant named together), or None."""
    local = now.astimezone(agenda.tz)
    today = local.date()
    found: list[Thing] = []

    def on(day: date, what: str) -> None:
        if day > today:
            found.append(Thing(datetime.combine(day, local.timetz()), what))

    await _notices(conn, today, on)
    await _loans(conn, today, on, agenda.guarantor_call_days)
    await _visits(conn, today, on, agenda)
    await _review(conn, today, on, agenda.review_opens)
    waiting = await _waiting(conn, now)
    if waiting is not None:
        found.append(waiting)
    if not found:
        return None
    first = min(thing.at for thing in found)
    named = [thing.what for thing in found if thing.at == first]
    what = say("next_joiner").join(dict.fromkeys(named[:NAMED]))
    if len(named) > NAMED:
        what = say("next_more", what=what, count=len(named))
    return Thing(first, what)


async def _notices(conn: AsyncConnection, today: date, on: Found) -> None:
    """A notice is closed the day after its last day; held by an objection, its secretary
    is reminded every day."""
    open_objections = (
        select(func.count())
        .select_from(objections)
        .where(objections.c.case_id == public_notices.c.case_id, objections.c.resolved_at.is_(None))
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(public_notices.c.ends_on, people.c.name, open_objections.label("held"))
        .select_from(
            public_notices.join(
                cases,
                and_(
                    cases.c.id == public_notices.c.case_id, cases.c.status == CaseStatus.ON_NOTICE
                ),
            ).join(people, people.c.id == cases.c.person_id)
        )
        .where(public_notices.c.closed_at.is_(None))
    )
    for row in rows:
        closes = row.ends_on + timedelta(days=1)
        if closes <= today and row.held:
            on(today + timedelta(days=1), say("next_notice_held", name=row.name))
        else:
            on(closes, say("next_notice", name=row.name, end=month_day(row.ends_on)))


async def _loans(conn: AsyncConnection, today: date, on: Found, call_days: int) -> None:
    """Reminders before each instalment not yet covered by what was repaid, and after the
    oldest one falls due unpaid (interest falls due with principal, so principal tells)."""
    rows = (
        await conn.execute(
            select(
                loans.c.id,
                people.c.name,
                instalments.c.number,
                instalments.c.due_on,
                instalments.c.principal_fen,
            )
            .select_from(
                loans.join(people, people.c.id == loans.c.person_id).join(
                    instalments, instalments.c.loan_id == loans.c.id
                )
            )
            .where(loans.c.status == LoanStatus.DISBURSED)
            .order_by(loans.c.id, instalments.c.due_on, instalments.c.number)
        )
    ).all()
    if not rows:
        return
    repaid = dict(
        (
            await conn.execute(
                select(repayments.c.loan_id, func.sum(repayments.c.principal_fen)).group_by(
                    repayments.c.loan_id
                )
            )
        ).all()
    )
    running: dict[int, int] = {}
    oldest: set[int] = set()
    for row in rows:
        running[row.id] = running.get(row.id, 0) + int(row.principal_fen)
        if running[row.id] <= int(repaid.get(row.id) or 0):
            continue  # covered by what was repaid
        due = row.due_on
        for days in sorted({*BEFORE, 0}, reverse=True):
            key = "next_loan_due" if days == 0 else "next_loan_before"
            on(
                due - timedelta(days=days),
                say(key, name=row.name, n=row.number, due=month_day(due)),
            )
        if row.id in oldest:
            continue
        oldest.add(row.id)
        for days in AFTER:
            on(
                due + timedelta(days=days),
                say("next_loan_overdue", name=row.name, n=row.number, days=days),
            )
        on(
            due + timedelta(days=call_days),
            say("next_loan_guarantor", name=row.name, days=call_days),
        )


async def _visits(conn: AsyncConnection, today: date, on: Found, agenda: Agenda) -> None:
    """A campaign with households still to visit: its reminders, the officers' list of who
    was not visited, and its deadline."""
    left = (
        select(func.count())
        .select_from(visits)
        .where(visits.c.campaign_id == visit_campaigns.c.id, visits.c.visited_on.is_(None))
        .scalar_subquery()
    )
    rows = await conn.execute(
        select(
            visit_campaigns.c.name,
            visit_campaigns.c.deadline,
            visit_campaigns.c.reminder_days,
            visit_campaigns.c.occasion,
            visit_campaigns.c.opened_at,
            left.label("left"),
        ).where(visit_campaigns.c.deadline >= today)
    )
    for row in rows:
        if not row.left:
            continue
        opened_on = row.opened_at.astimezone(agenda.tz).date()
        for days in row.reminder_days or []:
            day = row.deadline - timedelta(days=int(days))
            if day > opened_on:
                on(day, say("next_visit_reminder", campaign=row.name, days=int(days)))
        watch = row.deadline - timedelta(days=agenda.watch_days)
        if row.occasion != Occasion.EVENT and watch > opened_on:
            on(watch, say("next_visit_watch", campaign=row.name))
        on(row.deadline, say("next_visit_deadline", campaign=row.name))


async def _review(conn: AsyncConnection, today: date, on: Found, opens: str) -> None:
    """The yearly review opens for this year's ledger entries not yet handed out."""
    waiting = (
        await conn.execute(
            select(func.count())
            .select_from(ledger_entries)
            .where(
                ledger_entries.c.year == today.year,
                ledger_entries.c.status == "active",
                ledger_entries.c.review_opened_at.is_(None),
            )
        )
    ).scalar_one()
    if waiting:
        on(review_opens_on(today.year, opens), say("next_review", year=today.year))


async def _waiting(conn: AsyncConnection, now: datetime) -> Thing | None:
    """Messages queued to go later (after the night's quiet hours, or a retry)."""
    row = (
        await conn.execute(
            select(func.min(outbox.c.next_attempt_at), func.count()).where(
                outbox.c.status == "pending", outbox.c.next_attempt_at > now
            )
        )
    ).one()
    first, count = row
    if first is None:
        return None
    return Thing(first, say("next_outbox", count=count))
