"""The reminder scan as it was before it became set-based (one loan at a time, several
queries a loan), kept verbatim as the oracle the new scan is checked against. Only the
imports changed (and the instalment's number, now in the guarantor text's template), and
`position` is the old one too, so a slip in the shared arithmetic cannot hide in both
(the interest by the day is counted here a day at a time). Not used by the bot."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.cases.procedure import people_with_role
from bangfu_bot.common.money import yuan
from bangfu_bot.loans.enums import L
from bangfu_bot.loans.models import instalments, loans, repayments
from bangfu_bot.loans.service import Position, say
from bangfu_bot.members.models import people
from bangfu_bot.members.service import people_able, secretaries_of
from bangfu_bot.notify.intents import add_todo, tell

BEFORE = (30, 7, 1)
AFTER = (1, 7, 30)
SECRETARY_FROM = 7


async def position(conn: AsyncConnection, loan_id: int, on: date) -> Position:
    """What is owed on `on`, worked out independently of `Ledger`: interest counted a day at
    a time with exact fractions (the slow way, on purpose), then rounded half up once; what
    falls due is the plan's principal due by then with the interest accrued to the latest
    due date; the oldest unpaid is the first instalment whose principal is not all paid."""
    loan = (await conn.execute(select(loans).where(loans.c.id == loan_id))).one()
    plan = (
        await conn.execute(
            select(instalments)
            .where(instalments.c.loan_id == loan_id)
            .order_by(instalments.c.number)
        )
    ).all()
    paid = (
        await conn.execute(
            select(
                repayments.c.paid_on, repayments.c.principal_fen, repayments.c.interest_fen
            ).where(repayments.c.loan_id == loan_id)
        )
    ).all()
    interest_paid = sum(int(row.interest_fen) for row in paid)
    principal_paid = sum(int(row.principal_fen) for row in paid)

    def accrued(until: date) -> int:
        total, day = Fraction(0), loan.disbursed_on
        while day < until:
            left = loan.amount_fen - sum(int(r.principal_fen) for r in paid if r.paid_on <= day)
            total += Fraction(left * loan.annual_rate_bp, 10_000 * 365)
            day += timedelta(days=1)
        return int(total + Fraction(1, 2))

    due = [item for item in plan if item.due_on <= on]
    behind = max(sum(item.principal_fen for item in due) - principal_paid, 0)
    if behind:
        behind += max(accrued(due[-1].due_on) - interest_paid, 0)
    cumulative, oldest = 0, None
    for item in due:
        cumulative += item.principal_fen
        if cumulative > principal_paid and oldest is None:
            oldest = item
    outstanding = loan.amount_fen - principal_paid
    interest_due = max(accrued(on) - interest_paid, 0)
    if loan.status == L.WRITTEN_OFF:
        interest_due, outstanding, behind, oldest = 0, 0, 0, None
    days = (on - oldest.due_on).days if oldest is not None else 0
    return Position(interest_due, outstanding, behind, days, oldest)


async def remind(conn: AsyncConnection, *, now: datetime, today: date, call_days: int) -> int:
    """Send today's reminders and guarantor calls; return how many were queued."""
    sent = 0
    # In id order, as the status index gave it when this code ran (no index orders it now).
    active = (
        await conn.execute(select(loans).where(loans.c.status == L.DISBURSED).order_by(loans.c.id))
    ).all()
    for loan in active:
        name = (
            await conn.execute(select(people.c.name).where(people.c.id == loan.person_id))
        ).scalar_one()
        owed = await position(conn, loan.id, today)
        plan = (
            await conn.execute(
                select(instalments)
                .where(instalments.c.loan_id == loan.id)
                .order_by(instalments.c.number)
            )
        ).all()
        for item in plan:
            sent += await _before(conn, loan, name, item, today, now)
        if owed.oldest_unpaid is not None:
            sent += await _overdue(conn, loan, name, owed, today, now, call_days)
    return sent


async def _before(
    conn: AsyncConnection, loan: Any, name: str, item: Any, today: date, now: datetime
) -> int:
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
    text = (
        say("reminder_due", name=name, n=item.number, amount=amount)
        if days_left == 0
        else say("reminder_before", name=name, n=item.number, day=day, amount=amount)
    )
    await tell(
        conn,
        loan.person_id,
        text,
        key=f"loan:{loan.id}:{item.number}:-{offset}",
        now=now,
        reason="repayment reminder",
    )
    return 1


async def _overdue(
    conn: AsyncConnection,
    loan: Any,
    name: str,
    owed: Any,
    today: date,
    now: datetime,
    call_days: int,
) -> int:
    item, days = owed.oldest_unpaid, owed.days_overdue
    amount = yuan(owed.overdue_fen)
    day = f"{item.due_on.year}年{item.due_on.month}月{item.due_on.day}日"
    count = 0
    reached = [offset for offset in AFTER if offset <= days]
    if reached:
        offset = max(reached)
        await tell(
            conn,
            loan.person_id,
            say("reminder_overdue", name=name, n=item.number, day=day, amount=amount, days=days),
            key=f"loan:{loan.id}:{item.number}:+{offset}",
            now=now,
            reason="overdue reminder",
        )
        count += 1
        if offset >= SECRETARY_FROM:
            for secretary_id in await secretaries_of(conn, loan.branch_id):
                await tell(
                    conn,
                    secretary_id,
                    say("secretary_copy", name=name, n=item.number, days=days, amount=amount),
                    key=f"loan:{loan.id}:{item.number}:+{offset}:copy",
                    now=now,
                    reason="overdue copy to the secretary",
                )
    if days >= call_days:
        count += await _call_guarantor(conn, loan, name, amount, days, item, now)
    return count


async def _call_guarantor(
    conn: AsyncConnection, loan: Any, name: str, amount: str, days: int, item: Any, now: datetime
) -> int:
    # Once per overdue instalment: the keys of the to-dos and pushes make it idempotent,
    # and a to-do row is only added if none was added for this instalment yet.
    from bangfu_bot.todos.models import todos

    exists = (
        await conn.execute(
            select(todos.c.id).where(
                todos.c.loan_id == loan.id,
                todos.c.kind == "guarantor_call",
                todos.c.text.like(f"%第{item.number}期%"),
            )
        )
    ).first()
    if exists is not None:
        return 0
    text = say(
        "guarantor_todo",
        name=name,
        days=days,
        amount=amount,
        guarantor=loan.guarantor or "",
        n=item.number,
    )
    for staff in await people_with_role(conn, "department"):
        await add_todo(
            conn,
            assignee_id=staff,
            kind="guarantor_call",
            text=text,
            now=now,
            subject_id=loan.person_id,
            loan_id=loan.id,
            key=f"loan:{loan.id}:{item.number}:guarantor:{staff}",
        )
    # Whoever the authority policy lets write the loan off: its township's officers as the
    # roster places the borrower (a borrower who left it too), the department for a
    # borrower in no township.
    from bangfu_bot.loans.transitions import load_loan, loan_subject

    subject = loan_subject(await load_loan(conn, loan.id))
    for officer in await people_able(conn, "loan.write_off", subject):
        await add_todo(
            conn,
            assignee_id=officer,
            kind="loan_write_off",
            text=say("guarantor_notice", name=name, days=days, amount=amount),
            now=now,
            subject_id=loan.person_id,
            loan_id=loan.id,
            key=f"loan:{loan.id}:{item.number}:writeoff:{officer}",
        )
    return 1
