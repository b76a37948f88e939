"""The reminder scan as it was before it became set-based (one loan at a time, several
queries a loan), kept verbatim as the oracle the new scan is checked against. Only the
imports changed, and `position` is the old one too, so a slip in the shared arithmetic
cannot hide in both. Not used by the bot."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.cases.procedure import people_with_role, tell
from bangfu_bot.conversation.engine import yuan
from bangfu_bot.loans.models import instalments, loans, repayments
from bangfu_bot.loans.service import L, Position, say
from bangfu_bot.members.models import people
from bangfu_bot.members.service import person_by_id, secretaries_of
from bangfu_bot.todos.service import add_todo

BEFORE = (30, 7, 1)
AFTER = (1, 7, 30)
SECRETARY_FROM = 7


async def position(conn: AsyncConnection, loan_id: int, on: date) -> Position:
    """Interest due (instalments due by `on`), principal outstanding, and arrears."""
    loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).one()
    plan = (await conn.execute(select(instalments).where(instalments.c.loan_id == loan_id)
                               .order_by(instalments.c.number))).all()
    paid = (await conn.execute(select(func.coalesce(func.sum(repayments.c.interest_fen), 0),
                                      func.coalesce(func.sum(repayments.c.principal_fen), 0))
                               .where(repayments.c.loan_id == loan_id))).one()
    interest_paid, principal_paid = int(paid[0]), int(paid[1])
    due = [item for item in plan if item.due_on <= on]
    interest_due = sum(item.interest_fen for item in due) - interest_paid
    outstanding = loan.amount_fen - principal_paid
    # Arrears: walk the schedule; the first instalment not covered by all that was paid.
    covered = interest_paid + principal_paid
    cumulative, oldest = 0, None
    for item in due:
        cumulative += item.principal_fen + item.interest_fen
        if cumulative > covered and oldest is None:
            oldest = item
    overdue = max(sum(i.principal_fen + i.interest_fen for i in due) - covered, 0)
    if loan.status == L.WRITTEN_OFF:
        outstanding, overdue, oldest = 0, 0, None
    days = (on - oldest.due_on).days if oldest is not None else 0
    return Position(max(interest_due, 0), outstanding, overdue, days, oldest)


async def remind(conn: AsyncConnection, *, now: datetime, today: date, call_days: int) -> int:
    """Send today's reminders and guarantor calls; return how many were queued."""
    sent = 0
    # In id order, as the status index gave it when this code ran (no index orders it now).
    active = (await conn.execute(select(loans).where(loans.c.status == L.DISBURSED)
                                 .order_by(loans.c.id))).all()
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
