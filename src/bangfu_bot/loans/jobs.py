"""Scheduled work of loans: repayment reminders and the guarantor call.

Each message has an idempotency key (loan, instalment, day offset), so running the job
twice sends nothing twice. After downtime the job catches up with the latest reminder whose
day has come (not every missed one: three reminders at once would alarm more than help)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.cases.procedure import people_with_role, tell
from bangfu_bot.conversation.engine import yuan
from bangfu_bot.loans.models import instalments, loans
from bangfu_bot.loans.service import L, position, say
from bangfu_bot.members.models import people
from bangfu_bot.members.service import person_by_id, secretaries_of
from bangfu_bot.scheduler import Job
from bangfu_bot.todos.service import add_todo

BEFORE = (30, 7, 1)
AFTER = (1, 7, 30)
SECRETARY_FROM = 7


async def remind(conn: AsyncConnection, *, now: datetime, today: date, call_days: int) -> int:
    """Send today's reminders and guarantor calls; return how many were queued."""
    sent = 0
    active = (await conn.execute(select(loans).where(loans.c.status == L.DISBURSED))).all()
    for loan in active:
        name = (await conn.execute(select(people.c.name).where(people.c.id == loan.person_id))
                ).scalar_one()
        owed = await position(conn, loan.id, today)
        plan = (await conn.execute(select(instalments).where(instalments.c.loan_id == loan.id)
                                   .order_by(instalments.c.number))).all()
        for item in plan:
            sent += await _before(conn, loan, name, item, today, now)
        if owed.oldest_unpaid is not None:
            sent += await _overdue(conn, loan, name, owed, today, now, call_days)
    return sent


async def _before(conn: AsyncConnection, loan: Any, name: str, item: Any, today: date,
                  now: datetime) -> int:
    days_left = (item.due_on - today).days
    arrived = [offset for offset in (*BEFORE, 0) if offset >= days_left]
    if days_left < 0 or not arrived:
        return 0
    offset = min(arrived)
    by_then = await position(conn, loan.id, item.due_on)
    if by_then.overdue_fen == 0:
        return 0  # already paid ahead: no reminder
    amount = yuan(by_then.overdue_fen)
    day = f"{item.due_on.year}年{item.due_on.month}月{item.due_on.day}日"
    text = (say("reminder_due", name=name, n=item.number, amount=amount) if days_left == 0
            else say("reminder_before", name=name, n=item.number, day=day, amount=amount))
    await tell(conn, loan.person_id, text, key=f"loan:{loan.id}:{item.number}:-{offset}",
               now=now, reason="repayment reminder")
    return 1


async def _overdue(conn: AsyncConnection, loan: Any, name: str, owed: Any, today: date,
                   now: datetime, call_days: int) -> int:
    item, days = owed.oldest_unpaid, owed.days_overdue
    amount = yuan(owed.overdue_fen)
    day = f"{item.due_on.year}年{item.due_on.month}月{item.due_on.day}日"
    count = 0
    reached = [offset for offset in AFTER if offset <= days]
    if reached:
        offset = max(reached)
        await tell(conn, loan.person_id, say("reminder_overdue", name=name, n=item.number,
                                             day=day, amount=amount, days=days),
                   key=f"loan:{loan.id}:{item.number}:+{offset}", now=now,
                   reason="overdue reminder")
        count += 1
        if offset >= SECRETARY_FROM:
            for secretary_id in await secretaries_of(conn, loan.branch_id):
                await tell(conn, secretary_id, say("secretary_copy", name=name, n=item.number,
                                                   days=days, amount=amount),
                           key=f"loan:{loan.id}:{item.number}:+{offset}:copy", now=now,
                           reason="overdue copy to the secretary")
    if days >= call_days:
        count += await _call_guarantor(conn, loan, name, amount, days, item, now)
    return count


async def _call_guarantor(conn: AsyncConnection, loan: Any, name: str, amount: str, days: int,
                          item: Any, now: datetime) -> int:
    # Once per overdue instalment: the keys of the to-dos and pushes make it idempotent,
    # and a to-do row is only added if none was added for this instalment yet.
    from bangfu_bot.todos.models import todos

    exists = (await conn.execute(select(todos.c.id).where(
        todos.c.loan_id == loan.id, todos.c.kind == "guarantor_call",
        todos.c.text.like(f"%第{item.number}期%")))).first()
    if exists is not None:
        return 0
    text = say("guarantor_todo", name=name, days=days, amount=amount,
               guarantor=loan.guarantor or "") + f"（第{item.number}期）"
    for staff in await people_with_role(conn, "department"):
        await add_todo(conn, assignee_id=staff, kind="guarantor_call", text=text, now=now,
                       subject_id=loan.person_id, loan_id=loan.id,
                       key=f"loan:{loan.id}:{item.number}:guarantor:{staff}")
    member = await person_by_id(conn, loan.person_id)
    committee = member.committee_id if member else None
    for officer in await people_with_role(conn, "committee", committee_id=committee):
        await add_todo(conn, assignee_id=officer, kind="loan_write_off",
                       text=say("guarantor_notice", name=name, days=days, amount=amount),
                       now=now, subject_id=loan.person_id, loan_id=loan.id,
                       key=f"loan:{loan.id}:{item.number}:writeoff:{officer}")
    return 1


async def reminders(services: Any) -> None:
    """Daily: reminders before and after due dates, and the guarantor call."""
    settings = services.settings
    now = services.clock.now()
    async with services.engine.begin() as conn:
        await remind(conn, now=now, today=now.astimezone(settings.tz).date(),
                     call_days=settings.guarantor_call_days)


JOBS = [Job(id="loans.reminders", every_minutes=60, run=reminders)]
