"""What a member reads of their own loans (进度, and 借款 while one is open): for an open
loan the next instalment, its amount and day, and what is owed overall, arrears first."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bangfu_bot.common.dates import chinese_date, month_day
from bangfu_bot.common.money import yuan_read
from bangfu_bot.loans.enums import OPEN, L
from bangfu_bot.loans.models import loans
from bangfu_bot.loans.service import DUE_ON, NUMBER, PRINCIPAL, book_of, say


def _day(day: date, today: date) -> str:
    return month_day(day) if day.year == today.year else chinese_date(day)


async def loan_text(conn: AsyncConnection, row: Any, today: date) -> str:
    """One loan as its borrower reads it: a line, or for a disbursed loan a few."""
    amount, project, status = yuan_read(row.amount_fen), row.project, row.status
    if status != L.DISBURSED:
        return say("progress_loan", amount=amount, project=project, status=say("status_" + status))
    book = await book_of(conn, row.id)
    now = book.on(today)
    lines = [say("progress_loan_head", amount=amount, project=project)]
    if now.overdue_fen:
        lines.append(
            say("progress_overdue", days=now.days_overdue, amount=yuan_read(now.overdue_fen))
        )
    cumulative, nxt = 0, None
    for item in book.plan:
        cumulative += item[PRINCIPAL]
        if cumulative > book.principal_paid_fen and item[DUE_ON] >= today:
            nxt = item
            break
    if nxt is not None:
        # What paying on its day settles, beyond what is already behind (as reminders say).
        due = max(book.on(nxt[DUE_ON]).overdue_fen - now.overdue_fen, 0)
        lines.append(
            say("progress_next", n=nxt[NUMBER], amount=yuan_read(due), day=_day(nxt[DUE_ON], today))
        )
    lines.append(
        say(
            "progress_owed",
            owed=yuan_read(now.owed_now_fen),
            principal=yuan_read(now.principal_outstanding_fen),
            interest=yuan_read(now.interest_due_fen),
        )
    )
    return "\n".join(lines)


async def member_loans(conn: AsyncConnection, *, person_id: int, today: date) -> list[str]:
    """The person's loans, oldest first, each as `loan_text` reads it."""
    rows = (
        await conn.execute(select(loans).where(loans.c.person_id == person_id).order_by(loans.c.id))
    ).all()
    return [await loan_text(conn, row, today) for row in rows]


async def open_loan_refusal(conn: AsyncConnection, *, person_id: int, today: date) -> str | None:
    """Why 借款 cannot begin (a loan still open: what is owed and what to do), or None."""
    row = (
        await conn.execute(
            select(loans)
            .where(loans.c.person_id == person_id, loans.c.status.in_(OPEN))
            .order_by(loans.c.id)
        )
    ).first()
    if row is None:
        return None
    return say("open_loan_refused", loan=await loan_text(conn, row, today))
